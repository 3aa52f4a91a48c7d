"""The code's shape: sub-packages by job, an acyclic import graph that runs one way, modules of at
most 400 lines that say their job, and method files imported by the registry alone (and MLE's
by the pre-training and the early-stopped MLE baseline, whose update it is)."""

import ast

import pytest

from bench.cells.keys import CELL_CODE, PRETRAIN_CODE, REFERENCE_CODE, method_modules
from bench.store.source import closure, import_graph, modules, project_root
from methods import METHODS

ROOT = project_root()
GRAPH = import_graph(ROOT)
# bench's layers, bottom to top: a module may import its own layer and the ones below it
LAYERS = (
    {"bench", "bench.config"},
    {"bench.metrics"},
    {"bench.train"},
    {"bench.store"},
    {"bench.cells"},
    {"bench.report"},
    {"bench.cli", "bench.help", "bench.run", "bench.rescore", "bench.sample"},
)


def _layer(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names if n != "bench"):
            return i
        if module in names:
            return i
    return None


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
    assert _cycle(GRAPH) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_bench_module_sits_in_a_layer_and_imports_none_above_it():
    upward = []
    for m, deps in GRAPH.items():
        if not m.startswith("bench"):
            continue
        assert _layer(m) is not None, f"{m} is in no layer of LAYERS"
        upward += [(m, d) for d in deps if d.startswith("bench") and _layer(d) > _layer(m)]
    assert upward == []


def test_the_layer_check_sees_an_upward_import():
    assert _layer("bench.train.loop") < _layer("bench.cells.lifecycle") < _layer("bench.report")


def test_no_training_code_imports_report_code():
    """Nothing a cell or a pre-training runs, nor what a `--jobs` worker imports (it re-imports
    the `-m bench.run` main module: its module-level imports), reaches bench.report."""
    main_imports = set()
    for node in ast.parse((ROOT / "bench" / "run.py").read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module in GRAPH:
            main_imports.add(node.module)
    roots = {"bench.cells.executors", "bench.cells.lifecycle", *CELL_CODE, *main_imports}
    reached = closure(GRAPH, roots, opaque=())
    assert "bench.train.cell" in reached and "bench.metrics.evaluate" in reached
    assert not {m for m in reached if m.startswith("bench.report")}


def test_no_method_module_imports_another_method():
    """Shared code lives in shared modules (rollout, discriminator, generator, critic, ...), so a
    method file is read alone; only the registry imports the method files."""
    method_files = {m for spec in METHODS.values() for m in method_modules(spec)}
    # the policy-gradient methods' shared procedures, with a learned D and with the exact D*
    method_files -= {"methods.pg", "methods.oracle_discriminator"}
    assert {"methods.mle", "methods.seqgan", "methods.wgan_gp"} <= method_files
    importers = {m for m, deps in GRAPH.items() if deps & method_files}
    # MLE's update is shared: the pre-training and the early-stopped MLE baseline run it
    assert importers <= {"methods", "bench.train.pretrain", "methods.mle_es"}
    for user in ("bench.train.pretrain", "methods.mle_es"):
        assert not GRAPH[user] & (method_files - {"methods.mle"})


def test_cell_code_reaches_the_method_files_only_through_its_spec():
    """The key roots: the closure of a cell's training code holds no method file but MLE's (the
    pre-training's step), so one method's key never hashes another method's file."""
    shared = closure(GRAPH, (*CELL_CODE, *PRETRAIN_CODE, *REFERENCE_CODE))
    method_files = {m for spec in METHODS.values() for m in method_modules(spec)}
    assert shared & method_files == {"methods.mle"}
    assert "methods" not in shared  # the registry is opaque
    assert {"bench.train.loop", "bench.metrics.bleu", "oracle.data"} <= shared


@pytest.mark.parametrize("module", sorted(modules(ROOT)))
def test_every_module_says_its_job_in_a_docstring_and_stays_short(module):
    path = modules(ROOT)[module]
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip()
    assert len(path.read_text().splitlines()) <= 400


def test_the_key_closure_sees_every_import():
    """Code versions follow absolute imports only: no relative import, no importlib, and no
    package `__init__` with code of its own but the registry's (an `__init__` runs on every
    import of its package, yet a closure includes it only when it is named)."""
    for module, path in modules(ROOT).items():
        tree = ast.parse(path.read_text())
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert not relative and "importlib" not in path.read_text(), module
        if path.name == "__init__.py" and module != "methods":
            assert [type(n) for n in tree.body] == [ast.Expr], f"{module}: docstring only"
