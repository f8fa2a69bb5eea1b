"""Spectra → frozen embeddings: the one function every downstream use calls.

:func:`embed_spectra` prepares a block of spectra exactly as pretraining prepared a view
(the contract of :mod:`vitnirs.batching`) minus everything random: no MAE mask, no
augmentation, no crop or random subsample; only the deterministic even-spaced cap
``max_points`` (:func:`vitnirs.batching.collate.select_points`), then the per-spectrum
normalisation ``(x - mean) / std`` with ``level = (mean, log std)``
(:func:`vitnirs.batching.collate.normalise`). Spectra are embedded in batches, never one at a time.

>>> model, info = load_encoder("runs/demo")                      # doctest: +SKIP
>>> Z = embed_spectra(model, X, wavelengths_nm)                  # (n, D) float32  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitnirs.batching.collate import BatchSettings, normalise, select_points

__all__ = ["embed_spectra", "embed_store", "load_encoder", "meta_ids"]

INFO_ATTR = "vitnirs_info"  # load_encoder stores the checkpoint's info on the model under this name
META_FIELDS = ("instrument", "measurement_mode", "signal_type_original")  # as vitnirs.batching.loader


def load_encoder(checkpoint: str | Path, *, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a pretrained model for embedding, in eval mode.

    Parameters
    ----------
    checkpoint:
        A checkpoint directory (``RUN_DIR/checkpoints/step_N``, holding ``model.safetensors``
        and ``config.json``; a portable one from :func:`vitnirs.workflows.export.export_checkpoint`
        too), a run directory (its newest complete checkpoint is used), or ``"default"``: the
        model shipped in the package (:func:`vitnirs.models.default_checkpoint`).
    device:
        Where the weights go.

    Returns
    -------
    model, info
        ``info`` has ``checkpoint`` (the directory used), ``step``, ``preset``, ``max_points``
        (the pretraining cap on points per spectrum), ``portable``, ``meta_vocab`` (``{field: [values]}``;
        id = position + 1, 0 = unknown) and ``normalization`` (the checkpoint's constants).
        The same dict is attached to the model as ``model.vitnirs_info`` so that
        :func:`embed_spectra` uses the checkpoint's ``max_points`` by default.
    """
    from vitnirs.train.checkpoint import find_checkpoint, load_model

    if str(checkpoint) == "default":
        from vitnirs.models import default_checkpoint

        checkpoint = default_checkpoint()
    path = find_checkpoint(checkpoint)
    model, meta = load_model(path, map_location=device)
    model.eval()
    norm = dict(meta.get("normalization") or {})
    info = {
        "checkpoint": str(path),
        "step": int(meta.get("step", 0)),
        "preset": meta.get("model", {}).get("preset"),
        "max_points": norm.get("max_points"),
        "meta_vocab": norm.get("meta_vocab") or {},
        "normalization": norm,
        "portable": bool(meta.get("portable", False)),
    }
    setattr(model, INFO_ATTR, info)
    return model, info


def _check_inputs(X: np.ndarray, wavelengths_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, L); got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be numeric; got dtype {X.dtype}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"X has non-finite values (NaN or inf) in {len(rows)} row(s), first row {rows[0]} "
            f"(rows {rows[:10].tolist()}{' …' if len(rows) > 10 else ''}); clean or drop them first"
        )
    w = np.asarray(wavelengths_nm, dtype=np.float64)
    n, L = X.shape
    if w.shape == (L,):
        w = np.broadcast_to(w, (n, L))
    elif w.shape != (n, L):
        raise ValueError(f"wavelengths_nm must be ({L},) or ({n}, {L}) to match X {X.shape}; got {w.shape}")
    if not np.isfinite(w).all():
        row = int(np.flatnonzero(~np.isfinite(w).all(axis=1))[0])
        raise ValueError(f"wavelengths_nm has non-finite values (first in row {row})")
    return X, w


def embed_spectra(
    model: torch.nn.Module,
    X: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    max_points: int | None = None,
    meta: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Embed spectra with a (frozen) :class:`~vitnirs.model.mae.SpectralMAE`.

    Parameters
    ----------
    model:
        The pretrained model (``model.embed`` is called; eval mode, no grad).
    X:
        ``(n, L)`` absorbance spectra (as stored by ``vitnirs prepare``). Non-finite values
        raise ``ValueError`` naming the row.
    wavelengths_nm:
        ``(L,)`` shared grid or ``(n, L)`` one grid per row, in nm (cm⁻¹ must be converted).
    batch_size:
        Spectra per forward pass; the result does not depend on it (up to float rounding).
    device:
        Torch device of the forward passes (the model is moved there).
    max_points:
        Cap on points per spectrum; above it, ``max_points`` evenly spaced points are kept
        (deterministic, as in pretraining). ``None``: the checkpoint's cap when the model
        came from :func:`load_encoder`, else ``BatchSettings().max_points``; ``0``: no cap.
    meta:
        Optional ``(n, K)`` integer metadata ids (see :func:`meta_ids`); ``None`` = unknown.
    progress:
        Show a progress bar.

    Returns
    -------
    np.ndarray
        ``(n, D)`` float32 embeddings, row ``i`` for ``X[i]``.
    """
    X, w = _check_inputs(X, wavelengths_nm)
    n, L = X.shape
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if max_points is None:
        max_points = (getattr(model, INFO_ATTR, None) or {}).get("max_points") or BatchSettings().max_points
    if meta is not None:
        meta = np.asarray(meta, dtype=np.int64).reshape(n, -1)
    dev = torch.device(device)
    model = model.to(dev)
    from tqdm.auto import tqdm

    out = np.empty((n, 0), dtype=np.float32)
    chunks = []
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), desc="embed", disable=not progress, unit="batch"):
            stop = min(n, start + batch_size)
            normed, waves, valid, level = encoder_inputs(X[start:stop], w[start:stop], max_points)
            m = None if meta is None else torch.from_numpy(meta[start:stop]).to(dev)
            z = model.embed(normed.to(dev), waves.to(dev), valid.to(dev), level.to(dev), m)
            chunks.append(z.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else out


def encoder_inputs(
    X: np.ndarray, wavelengths_nm: np.ndarray, max_points: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spectra ``(b, L)`` and their grids ``(b, L)`` as the encoder reads them, as in pretraining.

    At most ``max_points`` evenly spaced points (deterministic), then per-spectrum normalisation.
    Returns ``values`` float32 ``(b, L')``, ``wavelengths`` float32 ``(b, L')``, ``valid`` bool
    ``(b, L')`` and ``level`` float32 ``(b, 2)``.
    """
    values = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
    waves = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(wavelengths_nm, X.shape), dtype=np.float32))
    valid = torch.ones(values.shape, dtype=torch.bool)
    if max_points and max_points < X.shape[1]:
        # no crop, no random subsample: select_points is then deterministic (its random draws are unused)
        settings = BatchSettings(p_crop=0.0, p_subsample=0.0, max_points=int(max_points), pad_multiple=1)
        index, valid = select_points(valid, settings, torch.Generator().manual_seed(0))
        values, waves = values.gather(1, index), waves.gather(1, index)
    normed, level = normalise(values, valid)
    return normed.float(), waves, valid, level.float()


def meta_ids(store: Any, name: str, meta_vocab: dict[str, list[str]]) -> np.ndarray:
    """``(n, K)`` int64 metadata ids of a store dataset under a checkpoint's vocabulary.

    The field values come from the dataset's metadata column when there is one, else from its
    manifest record (as in pretraining); a value the checkpoint never saw gets id 0 (unknown).
    """
    record, frame = store.records[name], store.metadata(name)
    cols = []
    for field in META_FIELDS:
        lookup = {v: i + 1 for i, v in enumerate(meta_vocab.get(field, []))}
        if field in frame.columns:
            col = frame[field].astype("string").fillna("").to_numpy(dtype=object)
        else:
            col = np.full(record["n_rows"], str(record.get(field) or ""), dtype=object)
        cols.append(np.array([lookup.get(v, 0) for v in col], dtype=np.int64))
    return np.stack(cols, axis=1)


def embed_store(model: torch.nn.Module, store: Any, name: str, **kw: Any) -> np.ndarray:
    """Embed dataset ``name`` of a :class:`~vitnirs.data.store.PreparedStore` → ``(n, D)`` float32.

    Keyword arguments go to :func:`embed_spectra`. Unless ``meta`` is given, the metadata ids
    are built with the checkpoint's vocabulary when the model came from :func:`load_encoder`
    (otherwise the metadata is left unknown).
    """
    vocab = (getattr(model, INFO_ATTR, None) or {}).get("meta_vocab")
    if "meta" not in kw and vocab:
        kw["meta"] = meta_ids(store, name, vocab)
    return embed_spectra(model, store.values(name), store.wavelengths_nm(name), **kw)
