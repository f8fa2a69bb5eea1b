"""The report's "Model card" section: the evaluated checkpoint's own scorecard, as its card says it.

A portable checkpoint (``vitnirs export``; the shipped model) carries ``model_card.md``, whose
"At a glance" bullets and "Scorecard, with its controls" table were generated from a
representation-study JSON: the four axes (within, few-shot, robustness, transfer) against the
untrained network of the same architecture, SNV+SG1 features and the classical calibrations,
and issue 24's verdict "pretraining pays". When the evaluation's checkpoint has such a card, the
report shows those lines and that table (markdown read back, every cell escaped), so the four-axis
figures of the published model sit beside this run's own. A checkpoint without a card (any
training run) gets no section.

>>> card_section("default")  # doctest: +SKIP
Html('<p class="note">From the model card of …')
"""

from __future__ import annotations

from pathlib import Path

from vitnirs.checkpoint import find_checkpoint
from vitnirs.errors import VitnirsError
from vitnirs.report.tables import Html, esc, table

__all__ = ["card_section", "markdown_table"]

CARD = "model_card.md"
SCORECARD = "## Scorecard, with its controls"
GLANCE = "## At a glance"


def _section(text: str, title: str) -> list[str]:
    """The lines under heading ``title`` up to the next ``## `` heading."""
    lines = text.splitlines()
    if title not in lines:
        return []
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def markdown_table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the first markdown table in ``lines`` (``| a | b |`` rows, one ``|---|``
    separator); ([], []) when there is none."""
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in lines
        if line.strip().startswith("|")
    ]
    if len(rows) < 2 or not all(set(c) <= set("-: ") for c in rows[1]):
        return [], []
    return rows[0], rows[2:]


def card_section(checkpoint: str | Path | None) -> Html | None:
    """The section for the checkpoint an evaluation used (a shipped name, a path), or None when it
    has no model card with a scorecard."""
    if not checkpoint:
        return None
    try:
        path = find_checkpoint(str(checkpoint))  # a shipped name or a path, as everywhere
    except VitnirsError:  # a moved or deleted checkpoint: no section, the rest of the report stands
        return None
    card = path / CARD
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    body = _section(text, SCORECARD)
    headers, rows = markdown_table(body)
    if not rows:
        return None
    glance = [line[2:] for line in _section(text, GLANCE) if line.startswith("- ")]
    intro = next((line for line in body if line.strip() and not line.startswith("|")), "")
    keep = ("Pretraining gain", "Within a dataset", "Across instruments", "Four axes", "Pooled over")
    bullets = "".join(f"<li>{esc(b.replace('`', ''))}</li>" for b in glance if b.startswith(keep))
    return Html(
        f'<p class="note">From the model card of the evaluated checkpoint ({esc(card)}): the published '
        "scorecard of these weights on the representation study, with its controls. "
        f"{esc(intro.replace('`', ''))}</p>"
        + (f"<ul>{bullets}</ul>" if bullets else "")
        + table([h.replace("`", "") for h in headers], [[c.replace("`", "") for c in r] for r in rows])
    )
