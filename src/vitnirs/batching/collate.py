"""Spectra of different lengths → one padded batch (the contract in ``vitnirs.batching``).

Like timm's NaFlex collator: pad to the longest spectrum (rounded up to a multiple of 8), a
validity mask, the true coordinates (wavelengths in nm). Before padding, a view may lose points:
a random wavelength crop, a random point subsample, and always a hard cap ``max_points`` (evenly
spaced) so memory stays bounded; the kept points keep their true λ. Then per-spectrum
normalisation over the real points, with what it removed kept as ``level = (mean, log std)``,
and the MAE block mask. Everything is vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vitnirs.batching.masking import decode_subset

PAD_WAVELENGTH = 1000.0
MIN_STD = 1e-6


@dataclass
class BatchSettings:
    """Everything that shapes a pretraining batch (sampling, views, augmentation, masking)."""

    batch_size: int = 64  # the most spectra in a batch
    token_budget: int | None = None  # B × L_max ≤ token_budget (per length bucket)
    p_synth: float = 0.3
    dataset_weights: dict[str, float] | None = None  # relative weights of real datasets (default 1)
    sampling: str = "uniform_by_dataset"  # or "proportional": real datasets weighted by their size
    curriculum_steps: int = 0
    seed: int = 0
    two_views: bool = True
    # augmentation (vitnirs.batching.augment.Augmenter)
    p_baseline_drift: float = 0.5
    p_scatter: float = 0.5
    p_noise: float = 0.8
    p_band_mask: float = 0.2
    p_shift: float = 0.3
    # points kept per view (always with their true λ)
    p_crop: float = 0.0
    crop_min_fraction: float = 0.5
    p_subsample: float = 0.0
    subsample_min_fraction: float = 0.5
    max_points: int = 2048
    pad_multiple: int = 8
    # MAE block masking (vitnirs.batching.masking.block_mask)
    mask_ratio: float = 0.7
    min_block: int = 5
    max_block: int = 50
    max_decoder_points: int | None = None  # masked points predicted per row (None = all, as MAE)


def torch_generator(seed: int, rank: int, step: int, stream: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``(seed, rank, step, stream)`` only."""
    state = np.random.SeedSequence([int(seed), int(rank), int(step), int(stream)]).generate_state(
        2, np.uint32
    )
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def pad_flat(flat: np.ndarray, lengths: np.ndarray, width: int, fill: float = 0.0) -> np.ndarray:
    """Concatenated rows ``flat (Σ L_i,)`` of ``lengths (B,)`` → ``(B, width)``, ``fill`` after each row."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.full((len(lengths), width), fill, dtype=np.float32)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    row = np.repeat(np.arange(len(lengths)), lengths)
    out[row, np.arange(len(flat)) - starts] = flat
    return out


def select_points(
    valid: torch.Tensor, settings: BatchSettings, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which points each spectrum keeps: ``index (B, L')`` into the row, ``valid (B, L')``.

    Random crop (prob ``p_crop``, a contiguous fraction ``U(crop_min_fraction, 1)`` of the
    points), random subsample (prob ``p_subsample``, a fraction ``U(subsample_min_fraction, 1)``),
    then at most ``max_points`` evenly spaced. The kept points stay in ascending order; ``L'`` is
    the longest result rounded up to ``pad_multiple`` (or ``L`` if smaller).
    """
    B, L = valid.shape
    pos = torch.arange(L).expand(B, L)
    n = valid.sum(1, keepdim=True)
    keep = valid.clone()
    # crop: every random number is drawn whatever the probabilities, so the stream is fixed
    crop_on = torch.rand((B, 1), generator=g) < settings.p_crop
    frac = settings.crop_min_fraction + (1 - settings.crop_min_fraction) * torch.rand((B, 1), generator=g)
    m = (frac * n).round().long().clamp(min=1)
    start = (torch.rand((B, 1), generator=g) * (n - m + 1)).long()
    keep &= ~crop_on | ((pos >= start) & (pos < start + m))
    # random subsample
    sub_on = torch.rand((B, 1), generator=g) < settings.p_subsample
    frac = settings.subsample_min_fraction + (1 - settings.subsample_min_fraction) * torch.rand(
        (B, 1), generator=g
    )
    k = (frac * keep.sum(1, keepdim=True)).round().long().clamp(min=2)
    scores = torch.rand((B, L), generator=g).masked_fill(~keep, 2.0)
    if bool(sub_on.any()):  # the double argsort is the costliest step: only when needed
        rank = scores.argsort(1).argsort(1)
        keep &= ~sub_on | (rank < k)
    # hard cap: point p of c kept is selected iff some i < m has floor(i c / m) == p
    c = keep.sum(1, keepdim=True)
    cap = settings.max_points
    if cap and bool((c > cap).any()):
        p = keep.long().cumsum(1) - 1
        even = (p * cap + c - 1) // c < ((p + 1) * cap + c - 1) // c
        keep &= (c <= cap) | even
    new_n = keep.sum(1, keepdim=True)
    if torch.equal(keep, valid):  # nothing removed: padding is already at the end
        order = torch.arange(L).expand(B, L)
    else:
        order = (~keep).to(torch.uint8).sort(dim=1, stable=True).indices  # kept points first, in order
    mult = max(1, settings.pad_multiple)
    width = -(-max(1, int(new_n.max()) if B else 1) // mult) * mult
    index = order[:, :width]
    if index.shape[1] < width:  # rounding up past L: extra columns point at 0, marked invalid
        index = torch.cat([index, index.new_zeros((B, width - index.shape[1]))], dim=1)
    return index, torch.arange(width).expand(B, width) < new_n


def normalise(values: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x - mean) / std`` over each row's real points → ``(B, L)`` (0 at padding), ``level (B, 2)``.

    ``level = (mean, log std)``; std floored at ``MIN_STD`` (a flat spectrum becomes zeros).
    Statistics in float64 (a 6-absorbance-unit tablet spectrum with a 1e-4 std loses digits in float32).
    """
    x = values.double()
    n = valid.sum(1, keepdim=True).clamp_min(1)
    mean = (x * valid).sum(1, keepdim=True) / n
    std = ((((x - mean) * valid) ** 2).sum(1, keepdim=True) / n).sqrt().clamp_min(MIN_STD)
    out = torch.where(valid, (x - mean) / std, 0.0).float()
    return out, torch.cat([mean, std.log()], dim=1).float()


def _block_mask(valid: torch.Tensor, settings: BatchSettings, g: torch.Generator) -> torch.Tensor:
    if settings.mask_ratio <= 0:
        return torch.zeros_like(valid)
    from vitnirs.batching.masking import block_mask  # written alongside; imported when first needed

    mask = block_mask(
        valid,
        mask_ratio=settings.mask_ratio,
        min_block=settings.min_block,
        max_block=settings.max_block,
        generator=g,
    )
    return mask & valid


@dataclass
class RawRows:
    """Padded, not yet normalised spectra (absorbance): the input of :func:`build_view`.

    values, baseline: float32 (B, L); wavelengths: float32 (B, L) nm; valid: bool (B, L);
    dataset_id: int64 (B,); is_synthetic: bool (B,); meta: int64 (B, K).
    """

    values: torch.Tensor
    baseline: torch.Tensor
    wavelengths: torch.Tensor
    valid: torch.Tensor
    dataset_id: torch.Tensor
    is_synthetic: torch.Tensor
    meta: torch.Tensor


Augment = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def build_view(
    raw: RawRows,
    settings: BatchSettings,
    *,
    step: int,
    rank: int = 0,
    stream: int = 0,
    augment: Augment | None = None,
) -> dict:
    """One view of a batch (the contract's keys, without ``view2``); randoms from (seed, rank, step, stream)."""
    seed = settings.seed
    index, valid = select_points(raw.valid, settings, torch_generator(seed, rank, step, 3 * stream))

    def take(t: torch.Tensor, fill: float) -> torch.Tensor:
        return torch.where(valid, t.gather(1, index), fill)

    values, baseline = take(raw.values, 0.0), take(raw.baseline, 0.0)
    wavelengths = take(raw.wavelengths, PAD_WAVELENGTH)
    if augment is not None:
        values = augment(values, wavelengths, valid, torch_generator(seed, rank, step, 3 * stream + 1))
    # corrected: the (augmented) spectrum minus the cached AsLS baseline of the original
    corrected, corrected_level = normalise(torch.where(valid, values - baseline, 0.0), valid)
    normed, level = normalise(values, valid)
    mask_gen = torch_generator(seed, rank, step, 3 * stream + 2)
    mask = _block_mask(valid, settings, mask_gen)
    return {
        "values": normed,
        "wavelengths": wavelengths.float(),
        "valid": valid,
        "mask": mask,
        "decode": decode_subset(mask, settings.max_decoder_points, mask_gen),
        "level": level,
        "corrected_values": corrected,
        "corrected_level": corrected_level,
        "dataset_id": raw.dataset_id.long(),
        "is_synthetic": raw.is_synthetic.bool(),
        "meta": raw.meta.long(),
    }


def raw_rows(spectra: Sequence[dict], n_meta: int | None = None) -> RawRows:
    """Pad a list of per-spectrum dicts (values, wavelengths, baseline (L_i,), dataset_id, is_synthetic, meta)."""
    lengths = np.array([len(s["values"]) for s in spectra], dtype=np.int64)
    width = int(lengths.max()) if len(lengths) else 0

    def pad(key: str, fill: float) -> torch.Tensor:
        flat = np.concatenate([np.asarray(s[key], dtype=np.float32).ravel() for s in spectra])
        return torch.from_numpy(pad_flat(flat, lengths, width, fill))

    meta = np.array([np.asarray(s.get("meta", ()), dtype=np.int64) for s in spectra], dtype=np.int64)
    meta = meta.reshape(len(spectra), -1) if meta.size else np.zeros((len(spectra), n_meta or 0), np.int64)
    return RawRows(
        values=pad("values", 0.0),
        baseline=pad("baseline", 0.0)
        if all("baseline" in s for s in spectra)
        else torch.zeros(len(spectra), width),
        wavelengths=pad("wavelengths", PAD_WAVELENGTH),
        valid=torch.arange(width).expand(len(spectra), width) < torch.from_numpy(lengths)[:, None],
        dataset_id=torch.tensor([int(s.get("dataset_id", 0)) for s in spectra], dtype=torch.long),
        is_synthetic=torch.tensor([bool(s.get("is_synthetic", False)) for s in spectra]),
        meta=torch.from_numpy(meta),
    )


def collate(
    spectra: Sequence[dict],
    *,
    settings: BatchSettings | None = None,
    step: int = 0,
    rank: int = 0,
    augment: Augment | None = None,
) -> dict:
    """A list of spectra (each: values, wavelengths, baseline ``(L_i,)``, dataset_id, is_synthetic,
    meta ``(K,)``) → one batch dict per the contract (no ``view2``); deterministic in (seed, rank, step)."""
    return build_view(raw_rows(spectra), settings or BatchSettings(), step=step, rank=rank, augment=augment)
