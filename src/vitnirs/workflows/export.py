"""Portable checkpoints: what inference needs, nothing that only resumes training.

A portable checkpoint is a pretraining checkpoint directory without ``trainer.pt``::

    OUT_DIR/
        model.safetensors   the weights, float32 by default (bfloat16 when asked: the loader casts
                            them back to float32)
        config.json         the checkpoint's config.json (config, model spec, normalisation
                            constants, format_version) plus "portable": true and "dtype"
        model_card.md       data, regions and licences, steps, losses, downstream results of
                            these same weights

:func:`vitnirs.embedding.load_encoder` reads it like any checkpoint directory; a directory of
another ``format_version`` is refused by :func:`vitnirs.train.checkpoint.read_checkpoint_config`.

Why float32 by default: bfloat16 halves the file but moved the shipped model's embeddings by a
median 17 % of their per-dimension spread on corn m5 (``benchmarks/export_dtype.py``,
``benchmarks/results/export_dtype.json``), so results measured on the float32 weights (the
scorecard, a downstream file) would no longer hold exactly for the exported ones.

>>> export_checkpoint("runs/x/checkpoints/step_0004000", "portable_x")  # doctest: +SKIP
PosixPath('portable_x')
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vitnirs.checkpoint import (
    CARD_FILE,
    CONFIG_FILE,
    DTYPES,
    MODEL_FILE,
    find_checkpoint,
    load_state,
    read_meta,
    write_checkpoint,
)
from vitnirs.errors import VitnirsError
from vitnirs.workflows.model_card import CardInputs, build_model_card

__all__ = ["PORTABLE_FILES", "export_checkpoint", "export_from_args"]

PORTABLE_FILES = (MODEL_FILE, CONFIG_FILE, CARD_FILE)


def export_checkpoint(
    checkpoint_dir: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "float32",
    card_inputs: CardInputs | None = None,
    readout: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a portable checkpoint (weights, config, model card; never ``trainer.pt``).

    Parameters
    ----------
    checkpoint_dir:
        A checkpoint directory, or a run directory (its newest complete checkpoint is used).
    out_dir:
        The portable checkpoint directory to write; written under a temporary name and
        renamed into place (:func:`vitnirs.checkpoint.write_checkpoint`), so it is either
        complete or absent.
    dtype:
        ``"float32"`` (bit-identical weights: the same ``weights_sha256``, so results measured on
        the checkpoint hold for the export) or ``"bfloat16"`` (half the size; about 3 significant
        digits per weight, which moves the embeddings: see the module docstring). Floating-point
        tensors only; integer buffers are kept.
    card_inputs:
        The files ``model_card.md`` is built from. When its ``run_dir`` is unset and the
        checkpoint lies in ``RUN_DIR/checkpoints/``, ``RUN_DIR`` is used; its ``source`` is set to
        the checkpoint exported.
    readout:
        The readout the checkpoint is meant to be used with (one of
        :data:`vitnirs.model.readout.READOUTS`), recorded as the config's ``evaluation.readout``:
        ``SpectralEmbedder(pooling="auto")`` and ``vitnirs embed`` use it. None: the run's own.
    overwrite:
        Replace an existing non-empty ``out_dir`` (otherwise a ``VitnirsError``).

    Returns
    -------
    Path
        ``out_dir``.
    """
    from vitnirs.model.readout import READOUTS

    if dtype not in DTYPES:
        raise VitnirsError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    if readout is not None and readout not in READOUTS:
        raise VitnirsError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}")
    src = find_checkpoint(checkpoint_dir)
    meta = read_meta(src)  # checks format_version
    if readout is not None:
        config = dict(meta.get("config") or {})
        config["evaluation"] = {**(config.get("evaluation") or {}), "readout": readout}
        meta = {**meta, "config": config}
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise VitnirsError(f"{out}: exists and is not empty (pass overwrite=True to replace it)")
    inputs = card_inputs or CardInputs()
    if inputs.run_dir is None and src.parent.name == "checkpoints":
        inputs = replace(inputs, run_dir=src.parent.parent)
    inputs = replace(inputs, source=src)

    def card(tmp: Path) -> None:  # built from the files just written
        (tmp / CARD_FILE).write_text(build_model_card(tmp, inputs), encoding="utf-8")

    meta = {**meta, "portable": True, "dtype": dtype}
    return write_checkpoint(out, load_state(src), meta, dtype=dtype, extra=card)


def export_from_args(
    checkpoint: str,
    out: str,
    *,
    dtype: str = "float32",
    run_dir: str | None = None,
    downstream: str | None = None,
    store: str | None = None,
    bank_manifests: list[str] | None = None,
    hardware: str = "unknown",
    notes: list[str] | None = None,
    readout: str | None = None,
    scorecard: str | None = None,
    scorecard_entries: list[str] | None = None,
    shipped_name: str | None = None,
    overwrite: bool = False,
) -> str:
    """What a ``vitnirs export`` command calls: export, then one line saying what was written."""
    inputs = CardInputs(
        run_dir=run_dir,
        downstream=downstream,
        store_dir=store,
        bank_manifests=tuple(bank_manifests or ()),
        hardware=hardware,
        notes=tuple(notes or ()),
        scorecard=scorecard,
        scorecard_entries=tuple(scorecard_entries or ()),
        shipped_name=shipped_name,
    )
    if scorecard and not scorecard_entries:
        raise VitnirsError("--scorecard needs --scorecard-entry NAME (this model's entry in it)")
    path = export_checkpoint(
        checkpoint, out, dtype=dtype, card_inputs=inputs, readout=readout, overwrite=overwrite
    )
    size = sum(p.stat().st_size for p in path.iterdir())
    return f"portable checkpoint ({dtype}, {size / 2**20:.2f} MiB): {path}"
