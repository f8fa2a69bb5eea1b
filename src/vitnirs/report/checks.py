"""The report's tables of the synthetic checks and of the ablations (no verdicts: these compare
nothing with a classical method)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vitnirs.report.discover import Ablation
from vitnirs.report.sections import img
from vitnirs.report.tables import Html, esc, fmt, provenance, table, wrap

__all__ = ["ablation_section", "synthetic_section"]


def _check_cell(r: dict | None, key: str) -> str:
    if r is None:
        return "—"
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    std = r.get("std") if isinstance(r.get("std"), dict) else {}
    return fmt((r.get("metrics") or {}).get(key), std.get(key))


def _sizes(r: dict) -> str:
    sizes = [str(r[k]) for k in ("n_train", "n_test") if r.get(k) is not None]
    return "/".join(sizes) if len(sizes) == 2 else "—"


def synthetic_section(records: Sequence[dict], evaluation: dict) -> Html:
    """The synthetic checks, one number per cell.

    Checks that report one and the same metric (the AUCs) share a table, a row per comparison and
    a column per method; every other check gets its own, a row per metric and a column per
    comparison. Each table's notes are listed under it.
    """
    methods = list(dict.fromkeys(str(r.get("method")) for r in records))
    keys = {m: list(dict.fromkeys(k for r in records if r.get("method") == m for k in r.get("metrics") or {}))
            for m in methods}  # fmt: skip
    single: dict[str, list[str]] = {}
    for m in methods:
        if len(keys[m]) == 1:
            single.setdefault(keys[m][0], []).append(m)
    parts = []
    for m in methods:
        if len(keys[m]) == 1 and m != single[keys[m][0]][0]:
            continue  # drawn with the first method of the same metric
        group = single[keys[m][0]] if len(keys[m]) == 1 else [m]
        mine = [r for r in records if str(r.get("method")) in group]
        checks = list(dict.fromkeys(str(r.get("dataset")) for r in mine))
        cell = {(str(r.get("dataset")), str(r.get("method"))): r for r in mine}
        if len(keys[m]) == 1:
            key, title = keys[m][0], f"{keys[m][0]} per comparison and method"
            heads = ["comparison", "n train/test", *map(wrap, group)]
            body = [[c, next(_sizes(r) for r in mine if str(r.get("dataset")) == c),
                     *(_check_cell(cell.get((c, g)), key) for g in group)] for c in checks]  # fmt: skip
        else:
            title = m
            heads = ["metric", *checks]
            names = keys[m] or ["—"]  # no metric at all: one row saying why (skipped)
            body = [[wrap(k), *(_check_cell(cell.get((c, m)), k) for c in checks)] for k in names]
        notes = "".join(
            f"<li>{esc(n)}</li>" for n in dict.fromkeys(str(r["note"]) for r in mine if r.get("note"))
        )
        protocols = ", ".join(dict.fromkeys(str(r.get("protocol")) for r in mine if r.get("protocol")))
        caption = f"value (± std); protocol: {protocols}"
        parts.append(f"<h3>{esc(title)}</h3>" + table(heads, body, caption=caption)
                     + (f'<ul class="note">{notes}</ul>' if notes else ""))  # fmt: skip
    return Html(f"<p>{esc(provenance(records, evaluation))}</p>" + "".join(parts))


def _flat(row: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _markdown_table(text: str) -> Html:
    """Pipe tables of a Markdown text as HTML tables; other lines as paragraphs."""
    out, block = [], []

    def flush() -> None:
        if block:
            cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in block]
            cells = [c for c in cells if not all(set(x) <= set("-: ") for x in c)]
            out.append(table(cells[0], [c + [""] * (len(cells[0]) - len(c)) for c in cells[1:]]))
            block.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{esc(line.strip().lstrip('#').strip())}</p>")
    flush()
    return Html("".join(out))


def ablation_section(ablations: Sequence[Ablation], root: Path) -> Html:
    """Per ablation folder: its PNG and its table (``ablation.md``, else the ``ablation.json`` rows)."""
    parts = []
    for ab in ablations:
        parts.append(
            f"<h3>{esc(ab.folder.relative_to(root).as_posix() or '.')}</h3>" + img(ab.png, "ablation")
        )
        if ab.markdown:  # the ablation's own table first
            parts.append(_markdown_table(ab.markdown))
        elif ab.rows:  # else its JSON rows, scalar cells only
            flat = [{k: v for k, v in _flat(r).items() if not isinstance(v, (list, tuple))} for r in ab.rows]
            cols = list(dict.fromkeys(k for r in flat for k in r))
            parts.append(
                table(cols, [[fmt(r.get(c)) if r.get(c) is not None else "—" for c in cols] for r in flat])
            )
    return Html("".join(parts))
