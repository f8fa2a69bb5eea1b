"""The package layout holds: who may import whom (README, "Layout"), read from the source with ``ast``.

(No private name crosses modules: tests/test_private_imports.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "vitnirs"


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) for every import statement, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


MODULES = _modules()


def _importers_of(target: str) -> set[str]:
    return {
        name
        for name, path in MODULES.items()
        for module, _ in _imports(path)
        if module == target or module.startswith(target + ".")
    }


def test_only_train_imports_the_trainer_state():
    outside = {m for m in _importers_of("vitnirs.train.checkpoint") if not m.startswith("vitnirs.train")}
    assert not outside, (
        f"import the checkpoint format from vitnirs.checkpoint, not train.checkpoint: {outside}"
    )


@pytest.mark.parametrize("package", ["vitnirs.data", "vitnirs.evaluate", "vitnirs.report", "vitnirs.model"])
def test_core_packages_import_neither_config_nor_train(package):
    for forbidden in ("vitnirs.config", "vitnirs.train", "vitnirs.workflows"):
        bad = {m for m in _importers_of(forbidden) if m == package or m.startswith(package + ".")}
        assert not bad, f"{sorted(bad)} import {forbidden}: take plain arguments instead"


def test_the_model_does_not_import_batching():
    bad = {m for m in _importers_of("vitnirs.batching") if m.startswith("vitnirs.model")}
    assert not bad, bad


def test_at_most_ten_modules_at_the_top_of_the_package():
    top = sorted(p.stem for p in SRC.glob("*.py") if not p.stem.startswith("__"))
    assert len(top) <= 10, top


def test_the_checks_can_fail():
    """The helpers see real imports: workflows import train, the CLI imports the workflows."""
    assert "vitnirs.workflows.demo" in _importers_of("vitnirs.train")
    assert "vitnirs.cli" in _importers_of("vitnirs.workflows")
