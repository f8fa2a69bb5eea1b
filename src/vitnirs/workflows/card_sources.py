"""What a model card may read, and only when it belongs to the checkpoint: the prepared store, a
downstream results file, the pretraining regions.

- **Store**: given (``--store``), else the one the run recorded (``pretrain_summary.json``'s
  ``store``), the config's ``data.store_dir``, ``RUN_DIR/store`` (``vitnirs pretrain``) or
  ``RUN_DIR/../store`` (``vitnirs demo``): the first holding a ``manifest.json``.
- **Downstream results**: used only when their ``weights_sha256`` is this checkpoint's (or, for a
  bfloat16 export, the float32 weights it was cast from); otherwise ignored with a warning on
  stderr naming both, so a card never reports another model's figures.
- **Regions**: the config's ``data.regions`` with their wavelength ranges
  (:data:`vitnirs.data.signal.REGION_RANGES_NM`), against the lattice's, and the span the
  datasets seen cover.

>>> store = find_store(None, Path("demo_run/pretrain"), summary=None, config={})  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vitnirs.checkpoint import weights_sha256
from vitnirs.data.coverage import region_spans
from vitnirs.data.signal import REGION_RANGES_NM, REGIONS
from vitnirs.model.wavelength import LATTICE_MAX_NM, LATTICE_MIN_NM

__all__ = ["find_store", "matching_downstream", "region_lines"]


def find_store(
    explicit: str | Path | None,
    run_dir: Path | None,
    *,
    summary: dict[str, Any] | None,
    config: dict[str, Any],
) -> Path | None:
    """The prepared store a card reads (see the module docstring), or ``None`` when none is found."""
    if explicit is not None:
        return Path(explicit)  # given: read it (a clear error if it has no manifest)
    candidates = [(summary or {}).get("store"), (config.get("data") or {}).get("store_dir")]
    if run_dir is not None:
        candidates += [run_dir / "store", run_dir.parent / "store"]
    for c in candidates:
        if c and (Path(c) / "manifest.json").is_file():
            return Path(c)
    return None


def _short(sha: Any) -> str:
    return f"{str(sha)[:12]}…" if sha else "none recorded"


def matching_downstream(
    results: dict[str, Any] | None,
    path: str | Path | None,
    *,
    checkpoint: Path,
    source: Path | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """``(results, provenance)`` when ``results`` scored these weights, else ``(None, why)``.

    ``checkpoint`` is the directory the card describes; ``source`` the checkpoint it was exported
    from (a bfloat16 export has other bytes than the float32 weights that were scored). A file
    without ``weights_sha256`` or with another one is ignored, with a warning on stderr naming
    both checkpoints and both hashes.
    """
    if results is None:
        return None, None
    own = weights_sha256(checkpoint)
    theirs, scored = results.get("weights_sha256"), results.get("checkpoint", "unknown")
    here = f"{source or checkpoint} (weights sha256 {_short(own)})"
    if theirs == own:
        return results, f"it scored these weights (sha256 {_short(own)})"
    if source is not None and theirs == weights_sha256(source):
        return results, (
            f"it scored the float32 weights these were exported from (sha256 {_short(theirs)}), before "
            f"their rounding to bfloat16 (sha256 {_short(own)}; `benchmarks/export_dtype.py` measures what "
            "the rounding changes)"
        )
    why = (
        f"{path}: ignored for the model card: it scored {scored} (weights sha256 {_short(theirs)}), "
        f"not {here}. Score this checkpoint with `python benchmarks/downstream.py --checkpoint "
        f"{source or checkpoint} --out FILE` and pass that FILE."
    )
    print(f"warning: {why}", file=sys.stderr)
    return None, f"the downstream file given scored other weights (sha256 {_short(theirs)}): not shown"


def _spans(spans: list[tuple[float, float]]) -> str:
    return ", ".join(f"{a:,.0f}–{b:,.0f} nm" for a, b in spans)


def region_lines(
    regions: list[str] | None, datasets: list[str], store: dict[str, Any] | None
) -> tuple[str, list[str]]:
    """(the at-a-glance sentence, the data section's bullets): the pretraining regions with their
    wavelength ranges (:data:`vitnirs.data.signal.REGION_RANGES_NM`) against the lattice's
    350 nm–25 µm, and the span the datasets seen cover (the store's manifest)."""
    lattice = f"{LATTICE_MIN_NM:,.0f} nm–{LATTICE_MAX_NM / 1000:g} µm"
    records = {r.get("name"): r for r in (store or {}).get("datasets", [])}
    seen = [records[n] for n in datasets if n in records]
    lows = [float(r["wavelength_nm_min"]) for r in seen if r.get("wavelength_nm_min") is not None]
    highs = [float(r["wavelength_nm_max"]) for r in seen if r.get("wavelength_nm_max") is not None]
    span = f"{min(lows):,.0f}–{max(highs):,.0f} nm" if lows and highs else None
    where = (
        f"- Wavelengths: the datasets it saw span {span} (the prepared store's manifest)."
        if span
        else "- Wavelengths: the span of the datasets it saw is unknown (no prepared store was found: "
        "`vitnirs export --store`)."
    )
    known = [r for r in regions or [] if r in REGION_RANGES_NM]
    if not known:
        return (
            f"Pretraining regions unknown (no `data.regions` in the checkpoint); lattice {lattice}.",
            ["- Pretraining regions: unknown (no `data.regions` in the checkpoint's config).", where],
        )
    ranges = ", ".join(f"{r} ({_spans([REGION_RANGES_NM[r]])})" for r in known)
    union = _spans(region_spans(known))
    left = [f"{r} ({_spans([REGION_RANGES_NM[r]])})" for r in REGIONS if r not in known]
    lines = [
        f"- Pretraining regions (`data.regions` of its config): {ranges}; together {union} of the "
        f"lattice's {lattice}" + (f". Not pretrained on: {', '.join(left)}." if left else "."),
        where,
    ]
    glance = f"Pretrained on {', '.join(known)} spectra (`data.regions`: {union} of the lattice's {lattice})"
    return glance + (f"; its datasets span {span}." if span else "."), lines
