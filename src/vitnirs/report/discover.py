"""Find what a run directory holds: the pretraining run(s), the evaluation, its artefacts, ablations.

Everything is found by file name anywhere under the directory (the layout of
``vitnirs demo --out DIR`` is the usual case, other nestings work too); prepared-store data
(``datasets/`` next to a ``manifest.json``), checkpoints and TensorBoard folders are not walked.

* pretraining runs: folders with ``metrics.jsonl`` or ``loss_curve.png``; the *main* one is the
  run whose ``checkpoints/`` the evaluation's checkpoint points into, else ``pretrain/``, else the
  shallowest;
* evaluation: ``metrics.json`` files holding any evaluation section; the main one is the
  shallowest (then the one with the most sections); ``lodo.json`` records are merged into its
  ``lodo`` section (without duplicates);
* ``embedding_map.json`` / ``reconstructions.json``: next to the main ``metrics.json`` if there,
  else the shallowest;
* ablations: every folder with ``ablation.json``, ``ablation.md`` or ``ablation.png``;
* ``summary.json`` (the demo's), ``config.yaml``, ``pretrain_summary.json``.

Unreadable files are listed in ``problems`` and otherwise ignored: the report never fails on them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = ("baselines", "downstream", "summary", "transfer", "lodo", "robustness", "synthetic_checks")
PRUNE = {"checkpoints", "tensorboard", "__pycache__", ".git"}


@dataclass
class Ablation:
    """One ablation folder: its rows (``ablation.json``), Markdown table and PNG (each optional)."""

    folder: Path
    rows: list[dict] | None = None
    markdown: str | None = None
    png: bytes | None = None


@dataclass
class RunFiles:
    """What :func:`discover` found under ``root``; ``used`` lists every file read."""

    root: Path
    config: dict | None = None
    demo_summary: dict | None = None
    pretrain_runs: list[Path] = field(default_factory=list)  # main run first
    pretrain_summary: dict | None = None
    evaluation: dict = field(default_factory=dict)
    evaluation_path: Path | None = None
    embedding_map: dict | None = None
    reconstructions: list | None = None
    ablations: list[Ablation] = field(default_factory=list)
    used: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def section(self, name: str) -> list[dict]:
        """Records of an evaluation section (``[]`` when missing or not a list)."""
        value = self.evaluation.get(name)
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    def ran(self, name: str) -> bool:
        return bool(self.section(name))


def _walk(root: Path) -> dict[str, list[Path]]:
    """``{file name: [paths]}`` under ``root``, shallowest first, store data and checkpoints pruned."""
    found: dict[str, list[Path]] = {}
    for here, dirs, files in os.walk(root):
        is_store = "manifest.json" in files
        dirs[:] = sorted(d for d in dirs if d not in PRUNE and not (is_store and d == "datasets"))
        for name in files:
            found.setdefault(name, []).append(Path(here) / name)
    for paths in found.values():
        paths.sort(key=lambda p: (len(p.relative_to(root).parts), str(p)))
    return found


def _read(path: Path, files: RunFiles, kind: str = "json") -> Any:
    """A JSON / YAML / text / bytes file, recorded in ``used``; ``None`` (and a problem) if unreadable."""
    try:
        if kind == "bytes":
            out: Any = path.read_bytes()
        elif kind == "text":
            out = path.read_text(encoding="utf-8")
        elif kind == "yaml":
            import yaml

            out = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            out = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        files.problems.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
        return None
    except Exception as exc:  # yaml.YAMLError and friends: never let one file stop the report
        files.problems.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
        return None
    files.used.append(path)
    return out


def _n_sections(data: Any) -> int:
    return sum(1 for s in SECTIONS if isinstance(data, dict) and isinstance(data.get(s), list))


def _lodo_records(data: Any) -> list[dict]:
    if isinstance(data, dict):
        data = data.get("lodo", data.get("records", []))
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def _record_key(r: dict) -> str:
    keys = ("dataset", "target", "method", "protocol", "split", "metrics")
    return json.dumps({k: r.get(k) for k in keys}, sort_keys=True, default=str)


def _near(paths: list[Path], folder: Path | None) -> Path | None:
    """The path in ``folder`` if there is one, else the shallowest."""
    for p in paths:
        if folder is not None and p.parent == folder:
            return p
    return paths[0] if paths else None


def discover(run_dir: str | Path) -> RunFiles:
    """Find and read the files of a run directory (see the module docstring)."""
    root = Path(run_dir)
    files = RunFiles(root=root)
    if not root.is_dir():
        files.problems.append(f"{root}: not a directory")
        return files
    found = _walk(root)
    if (root / "config.yaml").is_file():
        files.config = _read(root / "config.yaml", files, "yaml")
    if (root / "summary.json").is_file():
        files.demo_summary = _read(root / "summary.json", files)

    evaluations = []
    for path in found.get("metrics.json", []):
        data = _read(path, files)
        if _n_sections(data):
            evaluations.append((len(path.relative_to(root).parts), -_n_sections(data), str(path), data))
        elif data is not None:
            files.used.remove(path)  # some other metrics.json: not read for the report
    if evaluations:
        evaluations.sort(key=lambda t: t[:3])
        files.evaluation, files.evaluation_path = dict(evaluations[0][3]), Path(evaluations[0][2])
    lodo = files.section("lodo")
    seen = {_record_key(r) for r in lodo}
    for path in found.get("lodo.json", []):
        for r in _lodo_records(_read(path, files)):
            if _record_key(r) not in seen:
                seen.add(_record_key(r))
                lodo.append(r)
    if lodo:
        files.evaluation["lodo"] = lodo

    here = files.evaluation_path.parent if files.evaluation_path else None
    path = _near(found.get("embedding_map.json", []), here)
    files.embedding_map = _read(path, files) if path else None
    path = _near(found.get("reconstructions.json", []), here)
    files.reconstructions = _read(path, files) if path else None

    runs = {p.parent for p in found.get("metrics.jsonl", []) + found.get("loss_curve.png", [])}
    checkpoint = str(files.evaluation.get("checkpoint") or (files.demo_summary or {}).get("checkpoint") or "")

    def rank(d: Path) -> tuple:
        rel = d.relative_to(root).as_posix()
        pointed = bool(checkpoint) and (f"{rel}/checkpoints" in checkpoint or str(d) in checkpoint)
        return (not pointed, rel != "pretrain", len(d.relative_to(root).parts), rel)

    files.pretrain_runs = sorted(runs, key=rank)
    if files.pretrain_runs and (files.pretrain_runs[0] / "pretrain_summary.json").is_file():
        files.pretrain_summary = _read(files.pretrain_runs[0] / "pretrain_summary.json", files)

    folders = {p.parent for n in ("ablation.json", "ablation.md", "ablation.png") for p in found.get(n, [])}
    for folder in sorted(folders, key=lambda d: (len(d.relative_to(root).parts), str(d))):
        ab = Ablation(folder)
        if (folder / "ablation.json").is_file():
            rows = _read(folder / "ablation.json", files)
            rows = rows.get("rows", rows.get("variants")) if isinstance(rows, dict) else rows
            ab.rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else None
        if (folder / "ablation.md").is_file():
            ab.markdown = _read(folder / "ablation.md", files, "text")
        if (folder / "ablation.png").is_file():
            ab.png = _read(folder / "ablation.png", files, "bytes")
        files.ablations.append(ab)
    return files
