"""The pretraining data pipeline: store → sampled rows → augmented, padded, masked batch.

``PretrainData.batch(step)`` builds the whole batch of a step and is a pure function of
``(settings.seed, rank, step)``: which rows (``DatasetSampler``), crops, augmentation, masks.
``make_loader`` runs it in DataLoader workers (worker k builds steps start+k, start+k+n, …, so the
batches come out in step order whatever the worker timing) with pinned memory and prefetch.
Only numpy and torch here: the GPU machine has no nirs4all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vitnirs.batching.augment import Augmenter
from vitnirs.batching.collate import BatchSettings, RawRows, build_view, pad_flat
from vitnirs.batching.contract import PAD_WAVELENGTH, build_meta_vocab, encode_meta, meta_field_values
from vitnirs.batching.mixtures import MAX_COMPONENTS, cat_rows, mix_rows, plan_mixtures
from vitnirs.batching.sampler import DatasetSampler, step_rng, steps_per_epoch
from vitnirs.data.store import PreparedStore

__all__ = ["BatchSettings", "PretrainData", "PretrainIterable", "make_loader", "steps_per_epoch"]


def _standardised_targets(store: PreparedStore, names: list[str], synthetic: np.ndarray) -> list[np.ndarray]:
    """Per dataset, ``(n_rows,)`` float32: its first numeric ``y_*`` column standardised over its rows
    (NaN = missing, and for synthetic datasets or datasets without numeric targets).

    Used only by the optional semi-supervised head (``training_strategy.use_targets_in_pretraining``).
    """
    out = []
    for name, is_synth in zip(names, synthetic, strict=True):
        y = np.full(store.records[name]["n_rows"], np.nan, dtype=np.float32)
        if not is_synth:
            frame = store.targets(name)
            numeric = [c for c in frame.columns if str(c).startswith("y_") and frame[c].dtype.kind in "fiu"]
            if numeric:
                col = frame[numeric[0]].to_numpy(dtype=np.float64)
                mean, std = np.nanmean(col), np.nanstd(col)
                if np.isfinite(std) and std > 0:
                    y = ((col - mean) / std).astype(np.float32)
        out.append(y)
    return out


def _meta_codes(store: PreparedStore, names: list[str]) -> tuple[dict[str, list[str]], list[np.ndarray]]:
    """Per field, a vocabulary (id 0 = unknown); per dataset, ``(n_rows, K)`` int64 ids."""
    values = [meta_field_values(store, name) for name in names]
    vocab = build_meta_vocab(values)
    return vocab, [encode_meta(v, vocab) for v in values]


class PretrainData:
    """Batches of one rank for any step, from a prepared store.

    Parameters
    ----------
    store:
        A :class:`PreparedStore` or its folder.
    settings:
        :class:`BatchSettings`: sizes, sampling, views, augmentation, masking, seed.
    regions:
        Which regions pretraining uses (default NIR and vis-NIR).
    exclude:
        Dataset names left out (strict leave-one-dataset-out pretraining).
    use_targets:
        Add ``target`` ``(B,)`` to each batch: the row's first numeric ``y_*``, standardised per
        dataset, NaN where there is none (the optional semi-supervised head). Off: targets are
        never read.
    rank, world_size:
        This process in a distributed run; each rank draws its own stream.

    Attributes
    ----------
    names: the run's datasets (``dataset_id`` indexes this list).
    meta_vocab: ``{field: [values]}``; a value's id is its position + 1 (0 = unknown).
    """

    def __init__(
        self,
        store: PreparedStore | str | Path,
        *,
        settings: BatchSettings,
        regions: tuple[str, ...] | list[str] | None = ("NIR", "vis-NIR"),
        exclude: tuple[str, ...] | list[str] = (),
        use_targets: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.store = store if isinstance(store, PreparedStore) else PreparedStore(store)
        self.settings, self.rank, self.world_size = settings, int(rank), int(world_size)
        unknown = sorted(set(exclude) - set(self.store.records))
        if unknown:
            raise ValueError(f"{self.store.path}: cannot exclude {unknown}: no such dataset in the store")
        self.names = [n for n in self.store.names(regions=regions) if n not in set(exclude)]
        if not self.names:
            raise ValueError(
                f"{self.store.path}: no dataset of regions {regions} (after excluding {list(exclude)})"
            )
        records = [self.store.records[n] for n in self.names]
        self.sizes = np.array([r["n_rows"] for r in records], dtype=np.int64)
        self.lengths = np.array([r["n_points"] for r in records], dtype=np.int64)
        self.synthetic = np.array([r["kind"] == "synthetic" for r in records])
        position = {n: i for i, n in enumerate(self.names)}
        # row i of a paired synthetic table and of its partner are two views of one sample
        self.paired = np.array(
            [
                position.get(r.get("paired_with"), -1)
                if r.get("paired_with") in position
                and self.store.records[r["paired_with"]]["n_rows"] == r["n_rows"]
                else -1
                for r in records
            ],
            dtype=np.int64,
        )
        weights = settings.dataset_weights or {}
        cap = settings.max_points or None
        self.sampler = DatasetSampler(
            self.sizes,
            synthetic=self.synthetic,
            p_synth=settings.p_synth,
            weights=[
                float(weights.get(n, 1.0)) * (size if settings.sampling == "proportional" else 1.0)
                for n, size in zip(self.names, self.sizes, strict=True)
            ],
            seed=settings.seed,
            rank=rank,
            world_size=world_size,
            curriculum_steps=settings.curriculum_steps,
            lengths=np.minimum(self.lengths, cap) if cap else self.lengths,
            token_budget=settings.token_budget,
            max_batch=settings.batch_size,
        )
        self.augmenter = Augmenter(
            p_baseline_drift=settings.p_baseline_drift,
            p_scatter=settings.p_scatter,
            p_noise=settings.p_noise,
            p_band_mask=settings.p_band_mask,
            p_shift=settings.p_shift,
            p_blur=settings.p_blur,
            p_response=settings.p_response,
        )
        self.wavelengths = [self.store.wavelengths_nm(n).astype(np.float32) for n in self.names]
        self.meta_vocab, self._meta = _meta_codes(self.store, self.names)
        self._targets = None  # (all rows,) flat, and the offset of each dataset's first row
        if use_targets:
            per_dataset = _standardised_targets(self.store, self.names, self.synthetic)
            self._targets = (np.concatenate(per_dataset), np.concatenate([[0], np.cumsum(self.sizes)[:-1]]))
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None  # memmaps are reopened in each worker, never pickled (that would copy them)
        return state

    def steps_per_epoch(self, steps: int | None = None, k: int = 200) -> int:
        return steps_per_epoch(len(self.names), steps, k)

    def _rows(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = {}
        if d not in self._arrays:
            name = self.names[d]
            self._arrays[d] = (self.store.values(name), self.store.baseline(name))
        return self._arrays[d]

    def gather(self, dataset_idx: np.ndarray, row_idx: np.ndarray) -> RawRows:
        """Read rows ``(B,)`` from the memmaps, one fancy index per dataset, and pad them."""
        B = len(dataset_idx)
        order = np.argsort(dataset_idx, kind="stable")  # grouped by dataset; undone below
        values, baseline, waves, meta = [], [], [], []
        for d in np.unique(dataset_idx):  # a loop over the few datasets of the batch
            rows = row_idx[order][dataset_idx[order] == d]
            v, b = self._rows(int(d))
            values.append(np.asarray(v[rows], dtype=np.float32).ravel())
            baseline.append(np.asarray(b[rows], dtype=np.float32).ravel())
            waves.append(np.tile(self.wavelengths[d], len(rows)))
            meta.append(self._meta[d][rows])
        lengths = self.lengths[dataset_idx[order]]
        width = int(lengths.max())
        inverse = np.empty(B, dtype=np.int64)
        inverse[order] = np.arange(B)

        def padded(parts: list[np.ndarray], fill: float) -> torch.Tensor:
            return torch.from_numpy(pad_flat(np.concatenate(parts), lengths, width, fill)[inverse])

        return RawRows(
            values=padded(values, 0.0),
            baseline=padded(baseline, 0.0),
            wavelengths=padded(waves, PAD_WAVELENGTH),
            valid=torch.arange(width).expand(B, width) < torch.from_numpy(self.lengths[dataset_idx])[:, None],
            dataset_id=torch.from_numpy(dataset_idx.astype(np.int64)),
            is_synthetic=torch.from_numpy(self.synthetic[dataset_idx]),
            meta=torch.from_numpy(np.concatenate(meta)[inverse]),
        )

    def batch(self, step: int) -> dict:
        """The batch of ``step`` (see ``vitnirs.batching``); deterministic in (seed, rank, step).

        With ``p_mix`` > 0 its last rows are mixtures of real spectra (:mod:`vitnirs.batching.mixtures`)
        and it carries ``mix_group`` long (B,) (-1: not a mixture) and ``mix_weights`` (B, 4).
        """
        dataset_idx, row_idx = self.sampler.draw(step)
        s = self.settings
        plan = plan_mixtures(
            dataset_idx, self.sizes, self.synthetic, p_mix=s.p_mix, group=s.mix_group,
            max_components=s.mix_max_components, rng=step_rng(s.seed, self.rank, step, stream=7),
        )  # fmt: skip
        keep = len(dataset_idx) - (plan.n_rows if plan else 0)  # the sampled slots that stay
        dataset_idx, row_idx = dataset_idx[:keep], row_idx[:keep]
        mixed = mix_rows(self.gather(plan.dataset, plan.rows), plan.weights) if plan else None

        def rows(datasets: np.ndarray) -> RawRows:
            raw = self.gather(datasets, row_idx) if keep else None
            return mixed if raw is None else raw if mixed is None else cat_rows(raw, mixed)

        raw = rows(dataset_idx)
        out = build_view(raw, s, step=step, rank=self.rank, stream=0, augment=self.augmenter)
        if plan is not None:
            G, M, _ = plan.weights.shape
            out["mix_group"] = torch.cat([torch.full((keep,), -1), torch.arange(G).repeat_interleave(M)])
            out["mix_weights"] = torch.cat(
                [torch.zeros(keep, MAX_COMPONENTS), torch.from_numpy(plan.weights.reshape(G * M, -1))]
            )  # [B, 4]
        if self._targets is not None:
            flat, offset = self._targets
            target = flat[offset[dataset_idx] + row_idx]  # [B] standardised y, NaN = none (mixtures: NaN)
            out["target"] = torch.from_numpy(np.concatenate([target, np.full(len(out["values"]) - keep, np.nan,
                                                                             dtype=target.dtype)]))  # fmt: skip
        if s.two_views:
            partner = self.paired[dataset_idx]
            # paired synthetic rows: view 2 is the other table's row; mixtures: another render of the same mixture
            if (partner >= 0).any():
                raw = rows(np.where(partner >= 0, partner, dataset_idx))
            out["view2"] = build_view(raw, s, step=step, rank=self.rank, stream=1, augment=self.augmenter)
        return out


class PretrainIterable(IterableDataset):
    """``data.batch(step)`` for steps in ``[start, stop)``; worker k of n takes ``(step - start) % n == k``.

    Counting from ``start`` (not from 0) keeps DataLoader's round-robin order equal to step order
    for any resume step.
    """

    def __init__(self, data: PretrainData, start: int, stop: int):
        self.data, self.start, self.stop = data, int(start), int(stop)

    def __iter__(self):
        info = get_worker_info()
        k, n = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None:
            torch.set_num_threads(1)  # the workers share the cores with the training process
        for step in range(self.start + k, self.stop, n):
            yield self.data.batch(step)


def make_loader(
    data: PretrainData, start_step: int, stop_step: int, num_workers: int = 2, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader of ready batches (``batch_size=None``), in step order."""
    return DataLoader(
        PretrainIterable(data, start_step, stop_step),
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if num_workers > 0 else None,
        persistent_workers=False,
    )
