"""What training and inference share about a spectrum's way into the encoder (the contract of
:mod:`vitnirs.batching`): the padding value, the metadata fields and their ids, the
per-spectrum normalisation and the deterministic point cap.

:func:`vitnirs.batching.collate.build_view` (pretraining) and
:func:`vitnirs.embedding.embed_spectra` (inference) both call these, so an embedding sees a
spectrum exactly as pretraining did, minus everything random.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "META_FIELDS",
    "MIN_STD",
    "PAD_WAVELENGTH",
    "build_meta_vocab",
    "compact",
    "encode_meta",
    "even_cap",
    "meta_field_values",
    "normalise",
]

PAD_WAVELENGTH = 1000.0  # nm at padding positions (any finite value: padding is masked out)
MIN_STD = 1e-6  # std floor of the per-spectrum normalisation (a flat spectrum becomes zeros)
META_FIELDS = ("instrument", "measurement_mode", "signal_type_original")
_UNKNOWN = ("", "unknown", "nan", "None")


# ----------------------------------------------------------------------------- metadata
def meta_field_values(store: Any, name: str) -> list[np.ndarray]:
    """Per field of :data:`META_FIELDS`, the ``(n_rows,)`` object array of a store dataset's values.

    From the dataset's metadata column when there is one, else its manifest record; ``""`` for
    unknown (empty, ``unknown``, ``nan``, ``None``).
    """
    record, frame = store.records[name], store.metadata(name)
    cols = []
    for field in META_FIELDS:
        if field in frame.columns:
            col = frame[field].astype("string").fillna("").to_numpy(dtype=object)
        else:
            col = np.full(record["n_rows"], str(record.get(field) or ""), dtype=object)
        cols.append(np.where(np.isin(col, _UNKNOWN), "", col))
    return cols


def build_meta_vocab(values: Sequence[list[np.ndarray]]) -> dict[str, list[str]]:
    """``{field: sorted known values}`` over datasets' :func:`meta_field_values`; id = position + 1."""
    return {f: sorted({v for cols in values for v in cols[k] if v}) for k, f in enumerate(META_FIELDS)}


def encode_meta(values: list[np.ndarray], vocab: dict[str, list[str]]) -> np.ndarray:
    """``(n, K)`` int64 ids of one dataset's field values under ``vocab`` (0 = unknown or unseen)."""
    cols = []
    for k, field in enumerate(META_FIELDS):
        lookup = {v: i + 1 for i, v in enumerate(vocab.get(field, []))}
        cols.append(np.array([lookup.get(v, 0) for v in values[k]], dtype=np.int64))
    return np.stack(cols, axis=1)


# ----------------------------------------------------------------------------- points
def even_cap(keep: torch.Tensor, cap: int | None) -> torch.Tensor:
    """At most ``cap`` of each row's kept points ``keep (B, L)``, evenly spaced (deterministic).

    Point ``p`` of the ``c`` kept ones stays iff some ``i < cap`` has ``floor(i c / cap) == p``.
    ``cap`` 0 or ``None``: no cap.
    """
    c = keep.sum(1, keepdim=True)
    if cap and bool((c > cap).any()):
        p = keep.long().cumsum(1) - 1
        even = (p * cap + c - 1) // c < ((p + 1) * cap + c - 1) // c
        keep = keep & ((c <= cap) | even)
    return keep


def compact(keep: torch.Tensor, valid: torch.Tensor, pad_multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept points first, in order: ``index (B, L')`` into each row and the new ``valid (B, L')``.

    ``L'`` is the longest row's count rounded up to ``pad_multiple``; columns past ``L`` point
    at 0 and are invalid.
    """
    B, L = valid.shape
    new_n = keep.sum(1, keepdim=True)
    if torch.equal(keep, valid):  # nothing removed: padding is already at the end
        order = torch.arange(L).expand(B, L)
    else:
        order = (~keep).to(torch.uint8).sort(dim=1, stable=True).indices
    mult = max(1, pad_multiple)
    width = -(-max(1, int(new_n.max()) if B else 1) // mult) * mult
    index = order[:, :width]
    if index.shape[1] < width:
        index = torch.cat([index, index.new_zeros((B, width - index.shape[1]))], dim=1)
    return index, torch.arange(width).expand(B, width) < new_n


# ----------------------------------------------------------------------------- values
def normalise(values: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x - mean) / std`` over each row's real points → ``(B, L)`` (0 at padding), ``level (B, 2)``.

    ``level = (mean, log std)``; std floored at :data:`MIN_STD`. Statistics in float64 (a
    6-absorbance-unit tablet spectrum with a 1e-4 std loses digits in float32).
    """
    x = values.double()
    n = valid.sum(1, keepdim=True).clamp_min(1)
    mean = (x * valid).sum(1, keepdim=True) / n
    std = ((((x - mean) * valid) ** 2).sum(1, keepdim=True) / n).sqrt().clamp_min(MIN_STD)
    out = torch.where(valid, (x - mean) / std, 0.0).float()
    return out, torch.cat([mean, std.log()], dim=1).float()
