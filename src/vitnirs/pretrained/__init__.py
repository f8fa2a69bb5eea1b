"""Pretrained models shipped inside the package: data, no code.

Two portable checkpoints (see :mod:`vitnirs.workflows.export`), named by ``checkpoint="default"``
and ``checkpoint="robust"`` (:func:`vitnirs.checkpoint.find_checkpoint` resolves the names and says
when a model's files are missing):

- ``pretrained/default/``: masked patch prediction on absorbance + SG1 patch tokens (issue 15);
  the best within a dataset (median 0.999 × the best classical calibration), fragile to
  baseline drift and wavelength shift;
- ``pretrained/robust/``: the few-shot ridge objective on mixtures of real spectra, detrended-SNV
  + SG1 tokens, shift views (issue 24); at most SNV+SG1+PLS's and its untrained twin's drift,
  scatter and shift ratios on every robustness dataset, at a cost within a dataset.

Each ``model_card.md`` says what the model was trained on and how it compares with the classical
calibrations and its untrained twin. This package imports nothing of vitnirs, so that the
checkpoint format can read it without an import cycle.

>>> from vitnirs.checkpoint import find_checkpoint
>>> find_checkpoint("default").name
'default'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_DIR", "ROBUST_DIR", "SHIPPED", "shipped_dir"]

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
"""The directory of the default shipped checkpoint (``model.safetensors`` + ``config.json``)."""
ROBUST_DIR = Path(__file__).resolve().parent / "robust"
"""The directory of the nuisance-robust shipped checkpoint."""
SHIPPED = ("default", "robust")
"""The names a ``checkpoint`` argument may give for the models shipped in the package."""


def shipped_dir(name: str) -> Path:
    """The directory of shipped model ``name`` (one of :data:`SHIPPED`); read at call time, so a
    test may move it."""
    return {"default": DEFAULT_DIR, "robust": ROBUST_DIR}[name]
