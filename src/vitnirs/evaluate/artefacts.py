"""Data for the report's model-dependent figures: an embedding map and masked reconstructions.

Written by ``vitnirs evaluate`` next to ``metrics.json`` so that ``vitnirs report`` draws
them without loading the model:

* ``embedding_map.json`` — :func:`embedding_map`: a balanced sample of every real dataset of
  the store (at most ``max_per_dataset`` rows each, drawn with ``seed``) plus a smaller
  sample of the synthetic tables, embedded with :func:`vitnirs.embedding.embed_spectra`
  (the frozen-embedding path every downstream head uses) and projected to 2-D by PCA
  (sklearn, fitted on the real points only, so synthetic spectra are placed in the real
  data's axes) or, on request, t-SNE. Per point: dataset, instrument, kind.
* ``reconstructions.json`` — :func:`reconstructions`: a few real spectra prepared as a
  pretraining view (:func:`vitnirs.batching.collate.collate`: evenly spaced cap, per-spectrum
  normalisation, block mask of :func:`vitnirs.batching.masking.block_mask` with the
  checkpoint's masking settings; no augmentation, no crop) and passed through the MAE
  (``forward_encoder`` on the visible patches, ``forward_decoder`` at the masked ones).
  Values and predictions are the absorbance channel of the patch tokens on the absolute
  lattice (the standardised spectrum, in the units the loss sees); the prediction is ``None``
  wherever the patch was visible.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitnirs.batching.collate import BatchSettings, collate
from vitnirs.checkpoint import CheckpointInfo
from vitnirs.embedding import meta_ids
from vitnirs.evaluate.separability import embed_rows

__all__ = ["embedding_map", "reconstructions", "write_artefacts"]

SYNTHETIC_SHARE = 0.25  # synthetic points per synthetic table, as a fraction of max_per_dataset
MAX_SYNTHETIC_TABLES = 4


def _sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``min(n, k)`` sorted row indices without replacement."""
    return np.sort(rng.choice(n, size=min(n, k), replace=False)) if n else np.zeros(0, np.int64)


def _instruments(store: Any, name: str, rows: np.ndarray) -> list[str]:
    """The ``instrument`` metadata column at ``rows``, else the record's field, else the name."""
    frame = store.metadata(name)
    if "instrument" in frame.columns:
        col = frame["instrument"].astype("string").fillna("").to_numpy(dtype=object)[rows]
        return [str(v) if str(v) not in ("", "unknown", "nan", "None") else name for v in col]
    return [str(store.records[name].get("instrument") or name)] * len(rows)


def embedding_map(
    store: Any,
    model: torch.nn.Module,
    *,
    max_per_dataset: int = 200,
    seed: int = 0,
    embeddings: dict[str, np.ndarray] | None = None,
    method: str = "pca",
    info: CheckpointInfo | None = None,
) -> dict[str, Any]:
    """A 2-D map of the embeddings of a balanced sample of the store.

    Parameters
    ----------
    store:
        A :class:`~vitnirs.data.store.PreparedStore`.
    model:
        The frozen :class:`~vitnirs.model.mae.SpectralMAE`.
    max_per_dataset:
        Rows drawn per real dataset (all rows when fewer); each synthetic table (at most
        ``MAX_SYNTHETIC_TABLES``) gives ``SYNTHETIC_SHARE`` of that.
    seed:
        Seed of the row draws (and of t-SNE).
    embeddings:
        Optional ``{dataset: (n_rows, D)}`` already computed (e.g. by the suite); rows are
        taken from it instead of embedding again.
    method:
        ``"pca"`` (default) or ``"tsne"``.
    info:
        The checkpoint's info (point cap, metadata vocabulary), as :func:`embed_spectra` takes it.

    Returns
    -------
    dict
        ``{"method", "explained_variance" (PCA ratios of the 2 axes; [] for t-SNE),
        "n_points", "points": {"x", "y", "dataset", "instrument", "kind", "row"}}`` — lists
        of equal length, one entry per sampled spectrum; JSON-serialisable.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    rng = np.random.default_rng(seed)
    embeddings = embeddings or {}
    real = store.names(kind="real")
    synthetic = store.names(kind="synthetic")[:MAX_SYNTHETIC_TABLES]
    per_synth = max(1, int(round(max_per_dataset * SYNTHETIC_SHARE)))
    blocks, labels = [], {"dataset": [], "instrument": [], "kind": [], "row": []}
    for name, k, kind in [(n, max_per_dataset, "real") for n in real] + [
        (n, per_synth, "synthetic") for n in synthetic
    ]:
        rows = _sample(int(store.records[name]["n_rows"]), k, rng)
        if not len(rows):
            continue
        Z = embeddings[name][rows] if name in embeddings else embed_rows(model, store, name, rows, None, info)
        blocks.append(np.asarray(Z, dtype=np.float64))
        labels["dataset"] += [name] * len(rows)
        labels["instrument"] += _instruments(store, name, rows)
        labels["kind"] += [kind] * len(rows)
        labels["row"] += [int(r) for r in rows]
    Z = np.concatenate(blocks) if blocks else np.zeros((0, 2))
    xy, explained = _project(Z, np.array(labels["kind"]) == "real", method, seed)
    return {
        "method": method,
        "explained_variance": explained,
        "n_points": len(Z),
        "points": {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), **labels},
    }


def _project(Z: np.ndarray, is_real: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, list[float]]:
    """``Z (n, D)`` → ``(n, 2)`` and the explained-variance ratios (PCA fitted on real rows)."""
    if len(Z) < 3:
        return np.zeros((len(Z), 2)), []
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(Z) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(Z)
        return xy, []
    from sklearn.decomposition import PCA

    fit_on = Z[is_real] if is_real.sum() >= 3 else Z
    n_comp = min(2, fit_on.shape[1], len(fit_on))
    pca = PCA(n_components=n_comp).fit(fit_on)
    xy = pca.transform(Z)
    if n_comp < 2:
        xy = np.column_stack([xy, np.zeros(len(Z))])
    return xy, [float(v) for v in pca.explained_variance_ratio_]


def reconstructions(
    store: Any,
    model: torch.nn.Module,
    *,
    settings: BatchSettings,
    info: CheckpointInfo | None = None,
    datasets: list[str] | None = None,
    n: int = 4,
    mask_ratio: float | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``n`` real spectra, block-masked as in pretraining, and the MAE's prediction.

    Parameters
    ----------
    store, model, info:
        As :func:`embedding_map`.
    settings:
        The checkpoint's batch settings (its masking and point cap); the view is built without
        crop, subsample or augmentation, and every masked point is predicted.
    datasets:
        Where the spectra come from (default: every real dataset); spectrum ``i`` is a random
        row of ``datasets[i % len(datasets)]`` after a seeded shuffle of the list.
    n:
        Number of spectra.
    mask_ratio:
        Fraction masked (default: the checkpoint's ``masking.mask_ratio``).
    seed:
        Seed of the choice of rows and of the mask.

    Returns
    -------
    list of dict
        ``{"dataset", "row", "wavelengths_nm" (K,) the lattice points of the spectrum's valid
        patches, "values" (K,) their absorbance channel, "mask" (K,) bool (True = in a masked
        patch), "prediction" (K,) the decoder's absorbance channel at masked points and None
        elsewhere, "level" [mean, log std] removed by the normalisation, "mask_ratio",
        "masked_mse"}`` (over the absorbance channel of the masked points), JSON-serialisable.
    """
    names = list(datasets) if datasets is not None else store.names(kind="real")
    if not names or n < 1:
        return []
    rng = np.random.default_rng(seed)
    names = [names[i] for i in rng.permutation(len(names))]
    vocab = info.meta_vocab if info is not None else {}
    settings = replace(
        settings, p_crop=0.0, p_subsample=0.0, seed=seed,
        mask_ratio=settings.mask_ratio if mask_ratio is None else float(mask_ratio),
    )  # fmt: skip
    spectra, picked = [], []
    for i in range(n):
        name = names[i % len(names)]
        row = int(rng.integers(store.records[name]["n_rows"]))
        spectra.append(
            {
                "values": np.asarray(store.values(name)[row], dtype=np.float32),
                "wavelengths": store.wavelengths_nm(name),
                "meta": meta_ids(store, name, vocab)[row] if vocab else (),
            }
        )
        picked.append((name, row))
    batch = collate(spectra, settings=settings)  # no augment: the spectrum as measured
    if not vocab:
        batch.pop("meta")  # unknown metadata, as embed_spectra without meta
    model.eval()
    with torch.no_grad():
        out = model.forward_encoder(batch)
        pred, ids, masked_valid = model.forward_decoder(out)  # [B, M, P*C], [B, M], [B, M]
    tokens, tokenizer = out.input, model.encoder.tokenizer
    B, T, _ = tokens.content.shape
    P, C = tokenizer.patch_size, len(tokenizer.channels)
    channel = tokenizer.channels.index("absorbance") if "absorbance" in tokenizer.channels else 0
    full = torch.full(tokens.content.shape, float("nan"))  # [B, T, P*C]
    full.scatter_(
        1, ids[..., None].expand_as(pred), torch.where(masked_valid[..., None], pred.float(), float("nan"))
    )
    values = tokens.content.float().view(B, T, P, C)[..., channel]  # [B, T, P]
    predicted = full.view(B, T, P, C)[..., channel]
    first = int(torch.searchsorted(tokenizer.centres, tokens.centres[:1]))
    points = tokenizer.lattice.view(-1, P)[first : first + T]  # [T, P] nm
    result = []
    for i, (name, row) in enumerate(picked):
        keep = tokens.valid[i]  # [T]
        mask = tokens.masked[i][keep][:, None].expand(-1, P).reshape(-1)
        v, pr = values[i][keep].reshape(-1), predicted[i][keep].reshape(-1)
        err = (pr[mask] - v[mask]) ** 2
        result.append(
            {
                "dataset": name,
                "row": row,
                "wavelengths_nm": points[keep].reshape(-1).tolist(),
                "values": v.tolist(),
                "mask": mask.tolist(),
                "prediction": [
                    float(x) if m else None for x, m in zip(pr.tolist(), mask.tolist(), strict=True)
                ],
                "level": batch["level"][i].tolist(),
                "mask_ratio": settings.mask_ratio,
                "masked_mse": float(err.mean()) if len(err) else None,
            }
        )
    return result


def write_artefacts(
    store: Any,
    model: torch.nn.Module,
    out_dir: str | Path,
    *,
    settings: BatchSettings,
    info: CheckpointInfo | None = None,
    seed: int = 0,
    embeddings: dict[str, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write ``out_dir/embedding_map.json`` and ``out_dir/reconstructions.json``
    (``settings``: the checkpoint's batch settings, see :func:`reconstructions`).

    Returns ``{"embedding_map": path, "reconstructions": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "embedding_map": out_dir / "embedding_map.json",
        "reconstructions": out_dir / "reconstructions.json",
    }
    emap = embedding_map(store, model, seed=seed, embeddings=embeddings, info=info)
    paths["embedding_map"].write_text(json.dumps(emap))
    recs = reconstructions(store, model, settings=settings, info=info, seed=seed)
    paths["reconstructions"].write_text(json.dumps(recs))
    return paths
