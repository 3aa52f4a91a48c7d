"""Cell keys hash only the code a cell runs: its method's files, the training and evaluation
every cell runs, and pyproject.toml; a new method, the report, the CLI or another method's file
leave a key as it was."""

import dataclasses
import shutil

import pytest

from bench.cells.keys import cell_key, code_versions_of
from bench.cli import make_plan
from bench.store.source import project_root
from methods import METHODS


def family(module: str) -> set[str]:
    """The registry's methods whose trainer lives in methods/<module>.py (a method and the
    variants and controls beside it)."""
    return {n for n, s in METHODS.items() if s.make_trainer.__module__ == f"methods.{module}"}


ORACLE_D = family("seqgan") | family("seqgan_baseline") | family("maligan") | family("rloo")
PG = ORACLE_D | family("rankgan")  # every method file that imports methods/pg.py


@pytest.fixture
def tree(tmp_path):
    """A copy of the project's code, to edit."""
    root = project_root()
    for pkg in ("bench", "methods", "oracle"):
        shutil.copytree(root / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _versions(root):
    return code_versions_of(METHODS, root)


def _append(path, text="\n# edited\n"):
    path.write_text(path.read_text() + text)


def test_the_copy_hashes_as_the_checkout_does(tree):
    versions = _versions(tree)
    assert versions == _versions(project_root())
    assert versions["seqgan"] == versions["seqgan-const"]  # one file, one closure
    modules = {spec.make_trainer.__module__ for spec in METHODS.values()}
    assert len(set(versions.values())) == len(modules) + 2  # each file, pretrain, reference


def test_a_new_method_file_in_the_registry_changes_no_key(tree):
    before = _versions(tree)
    (tree / "methods" / "dummy.py").write_text('"""A new method."""\n\nfrom methods import mle\n')
    _append(tree / "methods" / "__init__.py", "from methods import dummy  # noqa\n")
    assert _versions(tree) == before


def test_report_cli_and_entry_modules_change_no_key(tree):
    before = _versions(tree)
    for rel in ("bench/report/table.py", "bench/cli.py", "bench/rescore.py", "bench/run.py"):
        _append(tree / rel)
    _append(tree / "bench/cells/progress.py")  # how progress is shown is not a result
    assert _versions(tree) == before


@pytest.mark.parametrize(
    ("edited", "changed"),
    [
        ("methods/wgan_gp.py", {"wgan-gp"}),
        ("methods/seqgan.py", family("seqgan")),
        ("methods/rankgan.py", {"rankgan"}),
        ("methods/critic.py", {"wgan-gp", "gumbel"}),
        ("methods/discriminator.py", set(PG)),
        ("methods/pg.py", set(PG)),
        ("methods/policy.py", set(PG)),
        ("methods/oracle_discriminator.py", ORACLE_D),
        ("methods/mle.py", set(METHODS) | {"pretrain"}),  # the pre-training's update
        ("bench/train/loop.py", set(METHODS) | {"pretrain"}),
        ("bench/train/cell.py", set(METHODS)),
        ("bench/metrics/bleu.py", set(METHODS) | {"pretrain", "reference"}),
        ("oracle/model.py", set(METHODS) | {"pretrain", "reference"}),
        ("pyproject.toml", set(METHODS) | {"pretrain", "reference"}),
    ],
)
def test_an_edit_changes_exactly_the_keys_of_the_code_that_runs_it(tree, edited, changed):
    before = _versions(tree)
    _append(tree / edited)
    after = _versions(tree)
    assert {name for name in before if before[name] != after[name]} == changed


def test_cell_keys_follow_their_method_code_version():
    from tests.conftest import tiny_task

    plan = make_plan(["--methods", "mle,wgan-gp", "--preset", "smoke"])
    assert plan.code == code_versions_of({m: METHODS[m] for m in ("mle", "wgan-gp")})
    task = tiny_task()
    keys = {m: cell_key(plan, m, 0, task) for m in plan.methods}
    edited = dataclasses.replace(plan, code=plan.code | {"wgan-gp": "src-edited"})
    assert cell_key(edited, "mle", 0, task) == keys["mle"]
    assert cell_key(edited, "wgan-gp", 0, task) != keys["wgan-gp"]
