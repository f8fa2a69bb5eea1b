"""Where a file's axis unit and signal type come from.

They are *declared*, never silently guessed (nirs4all's signal detector misreads real
data; a value rule such as "above 3,500 means cm⁻¹" fails on MIR files cut to
428-1,833 cm⁻¹). In order of precedence:

1. ``--unit`` / ``--signal-type`` on the command line (single-file runs);
2. ``data.declarations`` in the config: ``{pattern, unit, signal_type}`` by file glob;
3. the bank's own ``manifest.json`` (``datasets[].file``, ``.unit``, ``.signal_type``, the
   format of ../shared/xbank);
4. a ``signal_type`` metadata column holding one value.

Whatever is still undeclared is guessed in :mod:`vitnirs.data.validate`, with a warning.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from vitnirs.data.signal import normalize_signal_type, normalize_unit
from vitnirs.errors import BadFileError

BANK_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Declaration:
    """Declared axis unit and signal type of one file (None = not declared)."""

    unit: str | None = None
    signal_type: str | None = None
    unit_from: str | None = None
    signal_type_from: str | None = None

    def merged_under(self, other: Declaration) -> Declaration:
        """Fill what this declaration leaves open from ``other`` (lower precedence)."""
        unit, unit_from = (self.unit, self.unit_from) if self.unit else (other.unit, other.unit_from)
        if self.signal_type:
            sig, sig_from = self.signal_type, self.signal_type_from
        else:
            sig, sig_from = other.signal_type, other.signal_type_from
        return Declaration(unit, sig, unit_from, sig_from)


def declaration(unit: str | None, signal_type: str | None, origin: str) -> Declaration:
    """A validated declaration; ``ValueError`` names the bad value and the allowed ones."""
    return Declaration(
        normalize_unit(unit) if unit else None,
        normalize_signal_type(signal_type) if signal_type else None,
        origin if unit else None,
        origin if signal_type else None,
    )


def read_bank_manifest(bank_dir: Path) -> tuple[dict[str, Declaration], list[str]]:
    """Declarations from ``bank_dir/manifest.json`` by file name, plus warnings.

    A missing manifest gives no declarations; an unreadable one gives a warning, never an
    error (the files themselves may still be fine).
    """
    path = Path(bank_dir) / BANK_MANIFEST
    if not path.is_file():
        return {}, []
    origin = f"bank {BANK_MANIFEST}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries = doc["datasets"] if isinstance(doc, dict) else doc
        if not isinstance(entries, list):
            raise TypeError("'datasets' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return {}, [f"{path}: ignored, not a bank manifest ({err})"]
    found: dict[str, Declaration] = {}
    notes: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or "file" not in entry:
            continue
        try:
            found[str(entry["file"])] = declaration(entry.get("unit"), entry.get("signal_type"), origin)
        except ValueError as err:
            notes.append(f"{path}: entry for '{entry['file']}' ignored: {err}")
    return found, notes


def from_config(file_name: str, rules: list[dict]) -> Declaration:
    """The first ``data.declarations`` rule whose glob matches ``file_name`` (per key)."""
    out = Declaration()
    for rule in rules:
        if fnmatch.fnmatch(file_name, rule["pattern"]):
            out = out.merged_under(
                declaration(rule.get("unit"), rule.get("signal_type"), f"config pattern '{rule['pattern']}'")
            )
    return out


def from_column(values, source: str) -> Declaration:
    """A ``signal_type`` metadata column with a single value declares the signal type."""
    distinct = {str(v).strip() for v in values if isinstance(v, str) and v.strip()}
    if not distinct:
        return Declaration()
    if len(distinct) > 1:
        raise BadFileError(
            source, f"the 'signal_type' column holds several values ({', '.join(sorted(distinct))})"
        )
    try:
        return declaration(None, distinct.pop(), "the file's 'signal_type' column")
    except ValueError as err:
        raise BadFileError(source, str(err), column="signal_type") from err
