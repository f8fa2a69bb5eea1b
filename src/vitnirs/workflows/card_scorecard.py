"""The model card's scorecard section: a representation-study JSON, read, never retyped.

A study JSON (``vitnirs study`` / ``benchmarks/representation.py``: ``study_<card>.json``) holds,
per entry and readout, the calibration ratios, the pretraining gain against the untrained
network of the same architecture, transfer at k = 0 with and without unlabelled alignment,
robustness and the effective rank, each with its controls. The card shows the published entry
(the first name given), the other seeds of its recipe beside it, and the controls:

- **untrained**: the same architecture, never trained (the study's seeds 0 and 1);
- **SNV+SG1 features**: the spectra's SNV + Savitzky–Golay first derivative in the same heads;
- **classical**: the best classical calibration (PLS raw for transfer).

The four axes (few-shot and robustness per kind as well, when the study scored them) and issue 24's
verdict "pretraining pays" (:mod:`vitnirs.evaluate.verdict`) are read from the same entry.

>>> scorecard_verdicts(study, ["s0_step1600"])  # doctest: +SKIP
['Pretraining gain 1.005 ...', ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vitnirs.errors import VitnirsError
from vitnirs.evaluate.verdict import AXES, SIZES, axis_ratios, number_at, section_at, verdict

__all__ = ["scorecard_lines", "scorecard_verdicts"]


def _n(v: Any, spec: str = ".3g") -> str:
    return "–" if v is None else format(v, spec)


def _scores(study: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """(readout, scores) of entry ``name``: its first scored readout."""
    for entry in study.get("entries") or []:
        if entry.get("name") == name:
            for readout, scores in (entry.get("scores") or {}).items():
                if scores and scores.get("status") != "failed":
                    return readout, scores
            raise VitnirsError(f"scorecard entry {name!r} has no successful score")
    names = [e.get("name") for e in study.get("entries") or []]
    raise VitnirsError(f"scorecard has no entry {name!r}; it has {names}")


def _class(s: dict[str, Any], key: str) -> float | None:
    classes = s.get("classes") or []
    return classes[0].get(key) if classes else None


def _transfer(s: dict[str, Any], group: str, key: str) -> float | None:
    return (s.get("transfer") or {}).get(group, {}).get(key)


def scorecard_verdicts(study: dict[str, Any] | None, entries: list[str]) -> list[str]:
    """Plain sentences for the card's first lines: what pretraining added, against the controls."""
    if not study or not entries:
        return []
    _, s = _scores(study, entries[0])
    gain, n = s.get("pretraining_gain"), s.get("n_regression")
    paid = gain is not None and gain < 1
    out = [
        f"Pretraining gain {_n(gain, '.3f')} (median over {n} regression targets of RMSEP pretrained ÷ the "
        "same network untrained): "
        + (
            "per target, the pretraining beat the untrained network of the same architecture on calibration."
            if paid
            else "pretraining did not beat the untrained network of the same architecture on calibration."
        ),
        f"Within a dataset: median RMSEP {_n(s.get('regression_ratio'), '.3f')} × the best classical "
        f"calibration (untrained network {_n(s.get('untrained_ratio'), '.3f')}, SNV+SG1 features in the same "
        f"heads {_n(s.get('classical_features_ratio'), '.3f')}); better than the best classical on "
        f"{s.get('n_beats_classical')} of {n} targets.",
    ]
    cross = []
    for group in sorted(s.get("transfer") or {}):
        emb, pls = _transfer(s, group, "embedding"), _transfer(s, group, "pls_raw")
        if emb is not None and pls is not None:
            cross.append(f"{group} {_n(emb)} ({'below' if emb < pls else 'above'} PLS raw's {_n(pls)})")
    if cross:
        out.append(
            "Across instruments with no transfer sample (median test RMSEP): " + "; ".join(cross) + "."
        )
    if (s.get("axes") or {}).get("fewshot"):
        ratios, worst = axis_ratios(s), axis_ratios(s, worst=True)
        out.append(
            "Four axes against the untrained network of the same architecture (embedding ÷ untrained, below 1 "
            f"the pretrained encoder is better): {_axes_text(ratios, worst)}. By issue 24's rule (better on at "
            f"least 3 of 4 axes, worse on none by more than 2 %) pretraining {verdict(s)}."
        )
        seeds = [_scores(study, name)[1] for name in entries]
        if len(seeds) > 1 and all((x.get("axes") or {}).get("fewshot") for x in seeds):
            pooled, pooled_worst = axis_ratios(seeds), axis_ratios(seeds, worst=True)
            out.append(
                f"Pooled over the {len(seeds)} seeds shown (each part averaged over them first): "
                f"{_axes_text(pooled, pooled_worst)}; pretraining {verdict(seeds)}."
            )
    return out


def _axes_text(ratios: dict[str, float | None], worst: dict[str, float | None]) -> str:
    parts = []
    for axis in AXES:
        text = f"{axis} {_n(ratios[axis], '.3f')}"
        if axis in ("robustness", "transfer") and worst[axis] is not None:
            text += f" (worst {'kind' if axis == 'robustness' else 'group'} {_n(worst[axis], '.3f')})"
        parts.append(text)
    return ", ".join(parts)


def _fewshot(s: dict[str, Any], key: str) -> str:
    return " / ".join(_n(number_at(s, "axes", "fewshot", n, key), ".3f") for n in SIZES)


def _kind(s: dict[str, Any], kind: str, family: str) -> float | None:
    return number_at(s, "axes", "robustness", "by_kind", kind, family)


def scorecard_lines(study: dict[str, Any] | None, entries: list[str]) -> list[str]:
    """The scorecard table: the published entry, the other seeds, and the controls."""
    if not study or not entries:
        return ["- unknown (no scorecard JSON was given: `vitnirs export --scorecard`)."]
    scored = [(name, *_scores(study, name)) for name in entries]
    readout, first = scored[0][1], scored[0][2]
    head = [f"`{name}`" + (" (this model)" if i == 0 else "") for i, (name, _, _) in enumerate(scored)]
    out = [
        f"The `{study.get('scorecard')}` scorecard of the representation study on "
        f"`{Path(str(study.get('bank'))).name}` "
        f"(readout `{readout}`; every embedding under the metadata rule). Ratios are RMSEP ÷ the best "
        "classical calibration's, medians over the regression targets; below 1 the embedding wins.",
        "",
        "| figure | "
        + " | ".join(head)
        + " | untrained (same architecture) | SNV+SG1 features | classical |",
        "|---" * (len(scored) + 4) + "|",
    ]

    def row(label: str, get, untrained: Any = None, features: Any = None, classical: Any = None) -> None:
        cells = [get(s) for _, _, s in scored]
        out.append(f"| {label} | " + " | ".join(cells) + f" | {untrained or '–'} | {features or '–'} | "
                   f"{classical or '–'} |")  # fmt: skip

    row("regression ratio", lambda s: _n(s.get("regression_ratio"), ".3f"),
        _n(first.get("untrained_ratio"), ".3f"), _n(first.get("classical_features_ratio"), ".3f"), "1")  # fmt: skip
    row("pretraining gain", lambda s: _n(s.get("pretraining_gain"), ".3f"), "1")
    row("vs SNV+SG1 features", lambda s: _n(s.get("vs_classical_features"), ".3f"), None, "1")
    row("beats the best classical", lambda s: f"{s.get('n_beats_classical')}/{s.get('n_regression')}")
    if first.get("classes"):
        label = f"class balanced accuracy ({first['classes'][0].get('dataset')})"
        row(label, lambda s: _n(_class(s, "embedding")), _n(_class(first, "untrained")),
            _n(_class(first, "classical_features")), _n(_class(first, "classical")))  # fmt: skip
    for group in sorted(first.get("transfer") or {}):
        for suffix, what in (("", "k = 0"), ("+align", "k = 0 + unlabelled alignment")):
            row(f"{group} {what}", lambda s, g=group, x=suffix: _n(_transfer(s, g, "embedding" + x)),
                _n(_transfer(first, group, "untrained" + suffix)), _n(_transfer(first, group, "snv_sg1" + suffix)),
                f"PLS raw {_n(_transfer(first, group, 'pls_raw' + suffix))}")  # fmt: skip
    if (first.get("axes") or {}).get("fewshot"):
        row("few-shot n = 10 / 25 / 50: ÷ best of PLS, SNV+SG1+PLS, AOM-PLS", lambda s: _fewshot(s, "vs_classical"),
            None, None, "1")  # fmt: skip
        row("few-shot n = 10 / 25 / 50: ÷ untrained", lambda s: _fewshot(s, "vs_untrained"), "1")
    kinds = section_at(first, "axes", "robustness", "by_kind")
    for kind in kinds:
        row(f"robustness {kind} (RMSEP perturbed ÷ clean, median over datasets)",
            lambda s, k=kind: _n(_kind(s, k, "embedding")), _n(_kind(first, kind, "untrained")),
            f"SNV+SG1+PLS {_n(_kind(first, kind, 'snv_sg1_pls'))}",
            f"PLS raw {_n(_kind(first, kind, 'pls_raw'))}; MiniRocket {_n(_kind(first, kind, 'minirocket'))}")  # fmt: skip
    if (first.get("axes") or {}).get("fewshot"):
        row("÷ untrained: " + " / ".join(AXES),
            lambda s: " / ".join(_n(v, ".3f") for v in axis_ratios(s).values()), "1")  # fmt: skip
        row("pretraining pays? (issue 24's rule)", verdict)
    for key in sorted(first.get("robustness") or {}):

        def shift(s: dict[str, Any], family: str, k: str = key) -> str:
            r = (s.get("robustness") or {}).get(k, {}).get(family) or {}
            return f"{_n(r.get('clean'))} → {_n(r.get('perturbed'))}" if r else "–"

        row(f"{key} (RMSEP clean → perturbed)", lambda s: shift(s, "embedding"), shift(first, "untrained"),
            f"SNV+SG1+PLS {shift(first, 'snv_sg1_pls')}", f"PLS raw {shift(first, 'pls_raw')}")  # fmt: skip
    row(
        "effective rank (median)",
        lambda s: _n(s.get("effective_rank")),
        _n(first.get("untrained_effective_rank")),
    )
    return out
