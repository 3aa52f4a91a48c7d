"""The project's source as a graph of imports, and hashes of the code a run executes.

A cell's key holds the hash of the modules its training and evaluation import, transitively,
found by parsing the imports (`ast`), never by importing; so an edit elsewhere (another method,
the report, the CLI's help) leaves its cached cells reusable.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("bench", "methods", "oracle")
PINS = "pyproject.toml"  # the dependency pins: part of every hash
# the method registry only names the method files; its imports are not code a cell runs
REGISTRY = "methods"


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the packages ('pkg/__init__' -> 'pkg')."""
    return {
        ".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): f
        for pkg in PACKAGES
        for f in sorted((root / pkg).rglob("*.py"))
    }


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere (inside functions and TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in known}
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    found = modules(root)
    return {m: imports(f, set(found)) - {m} for m, f in found.items()}


def closure(graph: dict[str, set[str]], roots: Iterable[str], opaque=(REGISTRY,)) -> set[str]:
    """`roots` and every module reachable from them; `opaque` modules are neither included nor
    followed."""
    seen: set[str] = set()
    todo = [r for r in roots if r not in opaque]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        if m not in graph:
            raise KeyError(f"no module {m!r} in the project")
        seen.add(m)
        todo.extend(n for n in graph[m] if n not in opaque)
    return seen


def code_versions(roots: dict[str, Iterable[str]], root: Path | None = None) -> dict[str, str]:
    """Name -> 'src-<16 hex>': a hash of the files of that name's root modules' import closure
    and pyproject.toml (paths and contents, tracked or not: an uncommitted edit counts)."""
    root = root or project_root()
    files, graph = modules(root), import_graph(root)
    return {name: _digest(root, [files[m] for m in closure(graph, r)]) for name, r in roots.items()}


def _digest(root: Path, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in sorted([*paths, root / PINS], key=lambda p: p.relative_to(root).as_posix()):
        if f.is_file():
            digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return "src-" + digest.hexdigest()[:16]
