"""The code's shape: an acyclic import graph, a docstring per module, no method imports another."""

import ast
from pathlib import Path

import pytest

from bench.tracking import PRESENTATION
from methods import METHODS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "methods", "oracle")


def _modules() -> dict[str, Path]:
    return {
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
        for pkg in PACKAGES
        for f in sorted((ROOT / pkg).rglob("*.py"))
    }


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth (functions and TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in known}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: _imports(f, known) - {m} for m, f in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n] if n in path else [m, n]
            if n not in state and (found := visit(n, [*path, n])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def test_the_import_graph_is_acyclic():
    assert _cycle(_graph()) is None


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports when it is imported (module-level statements only)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            found.add(node.module)
    return found


def test_no_cell_code_imports_a_presentation_module():
    """source_version leaves PRESENTATION out of the cell keys: sound only while nothing that
    trains or evaluates a cell imports one: bench.cells, bench.executors and all they import,
    and what bench.run imports at module level (a `--jobs` worker is spawned by re-importing
    the `-m bench.run` main module; bench.run imports the report code inside functions)."""
    modules = _modules()
    spawned = _top_level_imports(modules["bench.run"], set(modules))
    assert "bench.cells" in spawned and "bench.report" not in spawned
    graph, seen, todo = _graph(), set(), ["bench.cells", "bench.executors", *spawned]
    while todo:
        if (m := todo.pop()) not in seen:
            seen.add(m)
            todo.extend(graph[m])
    presentation = {p.removesuffix(".py").replace("/", ".") for p in PRESENTATION}
    assert presentation <= set(graph) and "bench.evaluate" in seen
    assert not seen & presentation


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_method_module_imports_another_method():
    """Shared code lives in shared modules (rollout, discriminator, generator, ...), so a
    method file is read alone; only the registry imports the method files."""
    graph = _graph()
    methods = {spec.make_trainer.__module__ for spec in METHODS.values()}  # the method files
    assert {"methods.mle", "methods.seqgan", "methods.wgan_gp"} <= methods
    importers = {m for m, deps in graph.items() if deps & methods}
    assert importers <= {"methods", "bench.pretrain"}  # the registry; pre-training uses MLE's step
    assert "bench.pretrain" not in {m for m, d in graph.items() if d & (methods - {"methods.mle"})}


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_says_its_job_in_a_docstring(module):
    doc = ast.get_docstring(ast.parse(_modules()[module].read_text()))
    assert doc and doc.splitlines()[0].strip()
