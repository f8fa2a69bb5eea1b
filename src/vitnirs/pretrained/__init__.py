"""Pretrained models shipped inside the package: data, no code.

``pretrained/default/`` is a portable checkpoint (see :mod:`vitnirs.workflows.export`): what
``checkpoint="default"`` names (:func:`vitnirs.checkpoint.find_checkpoint` resolves it and says
when its files are missing); its ``model_card.md`` says what it was trained on and how it
compares with classical calibrations. This package imports nothing of vitnirs, so that the
checkpoint format can read it without an import cycle.

>>> from vitnirs.checkpoint import find_checkpoint
>>> find_checkpoint("default").name
'default'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_DIR"]

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
"""The directory of the shipped portable checkpoint (``model.safetensors`` + ``config.json``)."""
