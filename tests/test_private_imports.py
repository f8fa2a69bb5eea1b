"""No module of ``src/vitnirs`` imports a private (``_``-prefixed) name from another vitnirs module:
what one module needs of another is public (named in its docs, kept stable), so a module's private
helpers can change without breaking the others."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vitnirs"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_module(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def private_imports(path: Path) -> list[str]:
    """``'module:line name'`` for every private name ``path`` imports from another vitnirs module."""
    importer = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            source = _imported_module(node, importer, path.name == "__init__.py")
            if source.split(".")[0] != "vitnirs" or source == importer:
                continue
            # the names, and the modules on the way (`from vitnirs.data._helpers import x`)
            names = [a.name for a in node.names] + source.split(".")[1:]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "vitnirs"]
            names = [part for name in names for part in name.split(".")[1:]]
        else:
            continue
        for name in names:
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                found.append(f"{importer}:{node.lineno} {name}")
    return found


def test_the_check_sees_a_private_import(tmp_path, monkeypatch):
    fake = tmp_path / "vitnirs" / "workflows"
    fake.mkdir(parents=True)
    module = fake / "bad.py"
    module.write_text(
        "from vitnirs.data.validate import _typed, build_table\n"
        "from ..data import _private_module\n"
        "from vitnirs import __version__\n"
        "from ._own import helper\n"
        "import vitnirs.data._hidden\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "vitnirs")
    assert private_imports(module) == [
        "vitnirs.workflows.bad:1 _typed",
        "vitnirs.workflows.bad:2 _private_module",
        "vitnirs.workflows.bad:4 _own",
        "vitnirs.workflows.bad:5 _hidden",
    ]


def test_no_private_name_is_imported_across_modules():
    paths = sorted(SRC.rglob("*.py"))
    assert len(paths) > 50  # the package itself, not an empty folder
    assert [hit for path in paths for hit in private_imports(path)] == []
