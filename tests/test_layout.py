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


@pytest.mark.parametrize(
    "package",
    ["vitnirs.workflows", "vitnirs.data", "vitnirs.batching", "vitnirs.model", "vitnirs.train", "vitnirs.evaluate",
     "vitnirs.report"],
)  # fmt: skip
def test_workflows_and_core_packages_never_import_the_research_wing(package):
    bad = {m for m in _importers_of("vitnirs.research") if m == package or m.startswith(package + ".")}
    assert not bad, f"{sorted(bad)} import vitnirs.research: research sits above them, they never need it"


def test_only_the_cli_imports_the_research_wing():
    outside = {m for m in _importers_of("vitnirs.research") if not m.startswith("vitnirs.research")}
    assert outside <= {"vitnirs.cli"}, f"{sorted(outside)} import vitnirs.research: only the CLI may"


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


def test_the_research_wing_exists_above_the_workflows():
    """The research checks can fail: the wing is there, imports the workflows, and the CLI imports it."""
    research = {m for m in MODULES if m.startswith("vitnirs.research.")}
    assert {"vitnirs.research.ablate", "vitnirs.research.study", "vitnirs.research.strict_lodo"} <= research
    assert research & _importers_of("vitnirs.workflows"), "the research wing builds on the workflows"
    assert "vitnirs.cli" in _importers_of("vitnirs.research")


def _import_graph() -> dict[str, set[str]]:
    """vitnirs module -> the vitnirs modules it imports (at any depth, TYPE_CHECKING included).

    ``import vitnirs.x`` / ``from vitnirs.x import y`` import ``vitnirs.x`` (a package: its
    ``__init__`` only), or the submodule ``vitnirs.x.y`` when ``y`` is one.
    """
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = set()
        for module, names in _imports(path):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            edges |= set(submodules)
            if module in MODULES and (not names or len(submodules) < len(names)):
                edges.add(module)
        graph[name] = edges - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or None: a depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done (no cycle through it)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle():
    cycle = _cycle(_import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_check_can_fail():
    """It finds a cycle of a synthetic graph, and the real graph is the one the package has."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
    graph = _import_graph()
    assert "vitnirs.checkpoint" in graph["vitnirs.embedding"]  # from vitnirs.checkpoint import ...
    assert "vitnirs.pretrained" in graph["vitnirs.checkpoint"]  # from vitnirs import pretrained
    assert "vitnirs.model" not in graph["vitnirs.embedding"]  # from vitnirs.model.readout: the submodule
    assert _cycle({**graph, "vitnirs.pretrained": {"vitnirs.checkpoint"}}) is not None  # the old circle
