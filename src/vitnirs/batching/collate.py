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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vitnirs.batching.contract import MIN_STD, PAD_WAVELENGTH, compact, even_cap, normalise

if TYPE_CHECKING:
    from vitnirs.config import Config

__all__ = [
    "MIN_STD",
    "PAD_WAVELENGTH",
    "BatchSettings",
    "build_view",
    "collate",
    "normalise",
    "select_points",
]


@dataclass(frozen=True)
class BatchSettings:
    """Everything that shapes a pretraining batch (sampling, views, augmentation, masking).

    No field has a default: a batch is shaped by a config (:meth:`from_config`), so the numbers
    live in one place, :mod:`vitnirs.config`.
    """

    batch_size: int  # the most spectra in a batch
    token_budget: int | None  # B × L_max ≤ token_budget (per length bucket)
    p_synth: float
    dataset_weights: dict[str, float] | None  # relative weights of real datasets (default 1)
    sampling: str  # "uniform_by_dataset" or "proportional": real datasets weighted by their size
    curriculum_steps: int
    seed: int
    two_views: bool
    p_meta_unknown: float  # metadata ids of a row set to unknown (0), per view
    # mixtures of real spectra (vitnirs.batching.mixtures)
    p_mix: float
    mix_group: int
    mix_max_components: int
    # augmentation (vitnirs.batching.augment.Augmenter)
    p_baseline_drift: float
    p_scatter: float
    p_noise: float
    p_band_mask: float
    p_shift: float
    p_blur: float
    p_response: float
    # points kept per view (always with their true λ)
    p_crop: float
    crop_min_fraction: float
    p_subsample: float
    subsample_min_fraction: float
    max_points: int
    pad_multiple: int
    # MAE block masking (vitnirs.batching.masking.block_mask)
    mask_ratio: float
    min_block: int
    max_block: int

    @classmethod
    def from_config(cls, cfg: Config, **overrides: Any) -> BatchSettings:
        """The batch settings of a config, then ``overrides`` (field names of this class)."""
        t, ts, a, m = cfg.training, cfg.training_strategy, cfg.augmentation, cfg.masking
        settings = cls(
            batch_size=t.batch_size, token_budget=t.token_budget, p_synth=ts.p_synth,
            dataset_weights=dict(ts.dataset_weights) or None, sampling=ts.sampling,
            curriculum_steps=ts.curriculum_steps, seed=t.seed, two_views=cfg.losses.two_views,
            p_meta_unknown=ts.p_meta_unknown, p_mix=ts.p_mix, mix_group=ts.mix_group,
            mix_max_components=ts.mix_max_components,
            p_baseline_drift=a.p_baseline_drift, p_scatter=a.p_scatter, p_noise=a.p_noise,
            p_band_mask=a.p_band_mask, p_shift=a.p_shift, p_blur=a.p_blur, p_response=a.p_response,
            p_crop=a.p_crop,
            crop_min_fraction=a.crop_min_fraction, p_subsample=a.p_subsample,
            subsample_min_fraction=a.subsample_min_fraction, max_points=t.max_points,
            pad_multiple=t.pad_multiple, mask_ratio=m.mask_ratio, min_block=m.min_block_size,
            max_block=m.max_block_size,
        )  # fmt: skip
        return replace(settings, **overrides)  # an unknown field is a TypeError naming it


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
    keep = even_cap(keep, settings.max_points)  # the hard cap, as embed_spectra applies it
    return compact(keep, valid, settings.pad_multiple)


def _block_mask(valid: torch.Tensor, settings: BatchSettings, g: torch.Generator) -> torch.Tensor:
    if settings.mask_ratio <= 0:  # unmasked views (masking.mask_ratio = 0)
        return torch.zeros_like(valid)
    from vitnirs.batching.masking import block_mask

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
    clean = values  # before the nuisances: the clean view (same points, same mask)
    if augment is not None:
        values = augment(values, wavelengths, valid, torch_generator(seed, rank, step, 3 * stream + 1))
    # corrected: the (augmented) spectrum minus the cached AsLS baseline of the original
    corrected, corrected_level = normalise(torch.where(valid, values - baseline, 0.0), valid)
    normed, level = normalise(values, valid)
    clean_normed, clean_level = normalise(clean, valid) if augment is not None else (normed, level)
    mask_gen = torch_generator(seed, rank, step, 3 * stream + 2)
    mask = _block_mask(valid, settings, mask_gen)
    meta = raw.meta.long()
    if settings.p_meta_unknown > 0 and meta.numel():  # the unknown id, as every embedding is made
        drop = torch.rand(meta.shape[0], generator=torch_generator(seed, rank, step, 1000 + stream))
        meta = torch.where((drop < settings.p_meta_unknown)[:, None], 0, meta)  # [B, K]
    return {
        "values": normed,
        "wavelengths": wavelengths.float(),
        "valid": valid,
        "mask": mask,
        "level": level,
        "corrected_values": corrected,
        "corrected_level": corrected_level,
        "clean_values": clean_normed,
        "clean_level": clean_level,
        "dataset_id": raw.dataset_id.long(),
        "is_synthetic": raw.is_synthetic.bool(),
        "meta": meta,
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
    settings: BatchSettings,
    step: int = 0,
    rank: int = 0,
    augment: Augment | None = None,
) -> dict:
    """A list of spectra (each: values, wavelengths, baseline ``(L_i,)``, dataset_id, is_synthetic,
    meta ``(K,)``) → one batch dict per the contract (no ``view2``); deterministic in (seed, rank, step)."""
    return build_view(raw_rows(spectra), settings, step=step, rank=rank, augment=augment)
