"""Spectra → frozen embeddings: everything between a block of spectra and its embeddings.

Loading an encoder (:func:`load_encoder`; :func:`cached_encoder` keeps a few per process, for
:class:`~vitnirs.embedder.SpectralEmbedder` and ``vitnirs embed``), checking the spectra and
their grid (:func:`vitnirs.data.spectra_input.check_spectra`, the one check), the readout
(:func:`with_readout`, :func:`embed_absorbance`) and the embedding itself.

:func:`embed_spectra`, the one function every downstream use calls, prepares a block of spectra exactly as pretraining prepared a view
(the contract of :mod:`vitnirs.batching.contract`) minus everything random: no MAE mask, no
augmentation, no crop or random subsample; only the deterministic even-spaced cap
``max_points``, then the per-spectrum normalisation ``(x - mean) / std`` with
``level = (mean, log std)``. Spectra are embedded in batches, never one at a time.

>>> model, info = load_encoder("runs/demo")                      # doctest: +SKIP
>>> Z = embed_spectra(model, X, wavelengths_nm, info=info)       # (n, D) float32  # doctest: +SKIP
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitnirs.batching.contract import compact, encode_meta, even_cap, meta_field_values, normalise
from vitnirs.checkpoint import MODEL_FILE, CheckpointInfo, find_checkpoint, load_model
from vitnirs.data.coverage import check_coverage
from vitnirs.data.spectra_input import check_spectra
from vitnirs.model.readout import READOUTS

__all__ = [
    "DEFAULT_MAX_POINTS", "POOLINGS", "CheckpointInfo", "cached_encoder", "check_readable", "collapse_stats",
    "effective_rank",
    "embed_absorbance", "embed_spectra", "embed_store", "load_encoder", "meta_ids", "resolve_checkpoint",
    "under_metadata_rule", "with_readout",
]  # fmt: skip

METADATA_RULES = ("unknown", "store")

DEFAULT_MAX_POINTS = 2048  # the point cap without a checkpoint's own (training.max_points' default)

POOLINGS = ("auto", *READOUTS)  # the checkpoint's own readout, or any of vitnirs.model.readout.readout
_CACHE: OrderedDict[tuple[str, str, int], tuple[torch.nn.Module, CheckpointInfo]] = OrderedDict()
_CACHE_SIZE = 4


def load_encoder(checkpoint: str | Path, *, device: str = "cpu") -> tuple[torch.nn.Module, CheckpointInfo]:
    """Load a pretrained model for embedding, in eval mode.

    Parameters
    ----------
    checkpoint:
        A checkpoint directory (``RUN_DIR/checkpoints/step_N``, an exported or a fine-tuned
        one), a run directory (its newest complete checkpoint is used), or ``"default"`` /
        ``"robust"``: the models shipped in the package (:mod:`vitnirs.pretrained`).
    device:
        Where the weights go.

    Returns
    -------
    model, info
        ``info`` (:class:`~vitnirs.checkpoint.CheckpointInfo`) says how the checkpoint feeds its
        model: pass it to :func:`embed_spectra` (``info=``) so the checkpoint's point cap is used.
    """
    model, info = load_model(checkpoint, map_location=device)
    model.eval()
    return model, info


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """The checkpoint directory a ``checkpoint`` parameter names (:func:`vitnirs.checkpoint.find_checkpoint`):
    ``"default"`` / ``"robust"`` (the shipped models), a checkpoint directory, or a run directory's newest complete
    checkpoint. :class:`~vitnirs.errors.VitnirsError` when there is none."""
    return find_checkpoint(checkpoint)


def cached_encoder(ckpt_dir: Path, device: str) -> tuple[torch.nn.Module, CheckpointInfo]:
    """``load_encoder(ckpt_dir, device=device)``, cached per process (the newest few).

    Keyed by the directory, the device and the weights file's modification time, so that
    clones (cross-validation folds, nirs4all refits) share one model and a rewritten
    checkpoint is reloaded. The model is only used for inference.
    """
    key = (str(Path(ckpt_dir).resolve()), str(device), (Path(ckpt_dir) / MODEL_FILE).stat().st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    loaded = load_encoder(ckpt_dir, device=device)
    _CACHE[key] = loaded
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return loaded


def check_readable(
    model: torch.nn.Module,
    info: CheckpointInfo | None,
    wavelengths_nm: np.ndarray,
    *,
    source: str,
    axis: np.ndarray | None = None,
    unit: str | None = None,
) -> list[str]:
    """The coverage rule (:mod:`vitnirs.data.coverage`) for this encoder and checkpoint.

    ``wavelengths_nm`` ``(L,)`` or ``(n, L)``; ``info.config["data"]["regions"]`` are the
    pretraining regions (all, for a checkpoint that does not record them); ``axis``/``unit``:
    the declared axis, for the unit cross-check. Returns the warnings; raises
    :class:`~vitnirs.data.coverage.CoverageError` (a ``ValueError``) naming ``source``.
    """
    grids = np.atleast_2d(np.asarray(wavelengths_nm, dtype=np.float64))  # [n or 1, L]
    unique, inverse = np.unique(grids, axis=0, return_inverse=True)  # a shared grid is read once
    readable = model.encoder.tokenizer.readable_span(unique)
    readable = tuple(np.asarray(a)[inverse.reshape(-1)] for a in readable)
    regions = ((info.config if info is not None else {}).get("data") or {}).get("regions")
    return check_coverage(grids, readable, regions=regions, source=source, axis=axis, unit=unit)


def embed_spectra(
    model: torch.nn.Module,
    X: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    max_points: int | None = None,
    meta: np.ndarray | None = None,
    info: CheckpointInfo | None = None,
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
        ``(L,)`` shared grid or ``(n, L)`` one grid per row, in nm (cm⁻¹ must be converted):
        finite, positive, no value twice in a grid, any order
        (:func:`~vitnirs.data.spectra_input.check_spectra`).
    batch_size:
        Spectra per forward pass; the result does not depend on it (up to float rounding).
    device:
        Torch device of the forward passes (the model is moved there).
    max_points:
        Cap on points per spectrum; above it, ``max_points`` evenly spaced points are kept
        (deterministic, as in pretraining). ``None``: ``info``'s cap, else
        :data:`DEFAULT_MAX_POINTS`; ``0``: no cap.
    meta:
        Optional ``(n, K)`` integer metadata ids (see :func:`meta_ids`); ``None`` = unknown.
    info:
        The checkpoint's :class:`~vitnirs.checkpoint.CheckpointInfo` (from :func:`load_encoder`);
        its ``readout`` (:func:`with_readout`) says how the latents become the embedding.
    progress:
        Show a progress bar.

    Returns
    -------
    np.ndarray
        ``(n, D)`` float32 embeddings, row ``i`` for ``X[i]``.
    """
    X, w = check_spectra(X, wavelengths_nm)
    n, L = X.shape
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if max_points is None:
        max_points = (info.max_points if info is not None else None) or DEFAULT_MAX_POINTS
    readout = info.readout if info is not None else "mean"
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
            args = (normed.to(dev), waves.to(dev), valid.to(dev), level.to(dev), m)
            z = model.embed(*args) if readout == "mean" else model.embed(*args, kind=readout)
            chunks.append(z.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else out


def embed_absorbance(
    model: torch.nn.Module,
    absorbance: np.ndarray,
    wavelengths_nm: np.ndarray,
    *,
    info: CheckpointInfo | None = None,
    pooling: str = "auto",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """:func:`embed_spectra` under a pooling → ``(n, readout_dim)`` float64.

    ``pooling`` is one of :data:`POOLINGS`: ``"auto"``, the checkpoint's readout (``info.readout``;
    ``"mean"`` without info), or a readout of :mod:`vitnirs.model.readout` (every one but ``"mean"``
    needs ``info``). ``mean+level``'s level is that of the points the encoder reads (after the
    checkpoint's point cap), float32-rounded. The other arguments are :func:`embed_spectra`'s.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    if pooling != "auto":
        if info is None and pooling != "mean":
            raise ValueError(
                f"pooling {pooling!r} needs the checkpoint info (from cached_encoder / load_encoder)"
            )
        info = None if info is None else with_readout(info, pooling)
    return embed_spectra(
        model, absorbance, wavelengths_nm, info=info, batch_size=batch_size, device=device, progress=progress
    ).astype(np.float64)  # [n, readout_dim]


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
    if max_points and max_points < X.shape[1]:  # the cap of pretraining, without its random crop
        index, valid = compact(even_cap(valid, int(max_points)), valid, pad_multiple=1)
        values, waves = values.gather(1, index), waves.gather(1, index)
    normed, level = normalise(values, valid)
    return normed.float(), waves, valid, level.float()


def under_metadata_rule(info: CheckpointInfo, rule: str) -> CheckpointInfo:
    """The checkpoint info an embedding uses under a metadata rule.

    ``"unknown"`` (the rule of every embedding vitnirs makes: ``SpectralEmbedder``, ``vitnirs embed``
    and the evaluation by default) drops the metadata vocabulary, so every spectrum is embedded with
    unknown ids (0): a spectrum measured on another instrument is not a different embedding by
    construction. ``"store"`` keeps it (the store's instrument ids; for scoring that option).
    """
    if rule not in METADATA_RULES:
        raise ValueError(f"metadata rule must be one of {METADATA_RULES}; got {rule!r}")
    return info if rule == "store" else replace(info, meta_vocab={})


def with_readout(info: CheckpointInfo, readout: str) -> CheckpointInfo:
    """The checkpoint info with another readout, one of :data:`vitnirs.model.readout.READOUTS`.

    Of the encoder's valid tokens (D wide; :func:`vitnirs.model.readout.readout`, widths by
    :func:`~vitnirs.model.readout.readout_dim`): ``"mean"`` D values (the default); ``"mean+std"``
    2D (mean, std over the tokens); ``"mean+level"`` D + 2 (mean, then the spectrum's mean and
    log std after the point cap); ``"mean+max"`` 2D (mean, max over the tokens); ``"groups4"``,
    ``"groups8"`` G·D (the mean of each of G contiguous groups of tokens). ValueError for another name.
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}; got {readout!r}")
    return replace(info, readout=readout)


def meta_ids(store: Any, name: str, meta_vocab: dict[str, list[str]]) -> np.ndarray:
    """``(n, K)`` int64 metadata ids of a store dataset under a checkpoint's vocabulary.

    The field values come from the dataset's metadata column when there is one, else from its
    manifest record (as in pretraining); a value the checkpoint never saw gets id 0 (unknown).
    """
    return encode_meta(meta_field_values(store, name), meta_vocab)


def embed_store(
    model: torch.nn.Module, store: Any, name: str, *, info: CheckpointInfo | None = None, **kw: Any
) -> np.ndarray:
    """Embed dataset ``name`` of a :class:`~vitnirs.data.store.PreparedStore` → ``(n, D)`` float32.

    Keyword arguments go to :func:`embed_spectra`. Unless ``meta`` is given, the metadata ids
    are built with ``info``'s vocabulary (without ``info``, the metadata is left unknown).
    """
    if "meta" not in kw and info is not None and info.meta_vocab:
        kw["meta"] = meta_ids(store, name, info.meta_vocab)
    return embed_spectra(model, store.values(name), store.wavelengths_nm(name), info=info, **kw)


# ----------------------------------------------------------------------------- collapse figures
def effective_rank(Z: np.ndarray) -> float:
    """exp of the Shannon entropy of the normalised singular values of the centred ``(n, D)`` matrix.

    1 for a constant (or rank-1) embedding, close to ``D`` for an isotropic one (Roy & Vetterli 2007).
    """
    Z = np.asarray(Z, dtype=np.float64)
    s = np.linalg.svd(Z - Z.mean(axis=0), compute_uv=False)
    total = s.sum()
    if not np.isfinite(total) or total <= 1e-12 * max(1.0, float(np.abs(Z).max(initial=0.0))):
        return 1.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def collapse_stats(Z: np.ndarray) -> dict[str, float]:
    """How much an ``(n, D)`` embedding varies: effective rank, median and smallest per-dimension
    std, and the mean absolute value (a std far below it is a nearly constant embedding)."""
    Z = np.asarray(Z, dtype=np.float64)
    std = Z.std(axis=0)
    return {
        "effective_rank": effective_rank(Z),
        "dim_std_median": float(np.median(std)),
        "dim_std_min": float(std.min()),
        "mean_abs": float(np.abs(Z).mean()),
    }
