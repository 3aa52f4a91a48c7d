"""The template of docs/adding-a-method.md is a working method: the registry's checks pass on it.

The fenced block after `<!-- template: methods/<name>.py -->` is written to a temporary module,
imported under a unique name, its `METHOD` put in `methods.METHODS` for the test's duration, and
every registry-parametrized test of tests/test_methods.py is called on it, as it would run on a
registered method; so are the layout rules of a method file. The doc's list of those checks is
held to tests/test_methods.py too (tests/test_docs.py checks its links).
"""

import ast
import importlib
import inspect
import re
import sys
import uuid
from pathlib import Path

import pytest

import tests.test_methods as contract
from bench.cells.keys import method_modules
from bench.store.source import imports, modules, project_root
from methods import METHODS
from methods.base import PRESET_NAMES
from methods.config import build
from tests.test_methods import task20  # noqa: F401  (the fixture the trainer checks take)

ROOT = project_root()
DOC = ROOT / "docs" / "adding-a-method.md"
TEMPLATE = re.compile(r"^<!-- template: methods/(\w+)\.py -->\n```python\n(.*?)^```$", re.M | re.S)


def template_source(doc: str) -> tuple[str, str]:
    """(file stem, code) of the doc's template block; ValueError unless there is exactly one."""
    found = TEMPLATE.findall(doc)
    if len(found) != 1:
        raise ValueError(f"expected one template block, found {len(found)}")
    return found[0]


def _registry_checks() -> dict[str, list[str]]:
    """Each test of tests/test_methods.py parametrized over method names -> the names it runs
    for (`NAMES`, `TRAINING`, or the methods without updates)."""
    checks = {}
    for attr, fn in vars(contract).items():
        marks = getattr(fn, "pytestmark", []) if attr.startswith("test_") else []
        for mark in marks:
            if mark.name == "parametrize" and mark.args[0] == "name":
                checks[attr] = mark.args[1]
    return checks


CHECKS = _registry_checks()
# what a registered method that trains is checked with: the tests over every name and over the
# training ones (the template trains: test_the_template_makes_updates_in_its_smoke_preset)
APPLICABLE = sorted(
    c for c, names in CHECKS.items() if names is contract.NAMES or names is contract.TRAINING
)
NO_UPDATES_ONLY = {"test_a_method_without_updates_has_none_in_any_preset_and_refuses_a_step"}


@pytest.fixture
def load(tmp_path, monkeypatch):
    """`load(code)`: the module of `code`, imported from tmp_path under a unique name, its
    METHOD registered in `methods.METHODS` until the test ends."""
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = []

    def _load(code: str):
        name = f"doc_template_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(code)
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        loaded.append(name)
        assert module.METHOD.name not in METHODS, "the template must not take a registered name"
        monkeypatch.setitem(METHODS, module.METHOD.name, module.METHOD)
        return module

    yield _load
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.fixture
def template(load):
    stem, code = template_source(DOC.read_text())
    module = load(code)
    assert module.METHOD.name == stem  # the marker names the file the doc tells you to write
    return module


def _run_check(check: str, name: str, request) -> None:
    """Call test_methods' `check` for method `name`, its other arguments from their fixtures."""
    fn = getattr(contract, check)
    params = inspect.signature(fn).parameters
    fn(**{p: name if p == "name" else request.getfixturevalue(p) for p in params})


def test_the_doc_has_exactly_one_template_block():
    stem, code = template_source(DOC.read_text())
    assert stem == "example" and "METHOD = MethodSpec(" in code
    block = "<!-- template: methods/a.py -->\n```python\nx = 1\n```\n"
    assert template_source(block) == ("a", "x = 1\n")
    with pytest.raises(ValueError, match="found 0"):
        template_source("```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="found 2"):
        template_source(block + block)


def test_the_registry_checks_are_found():
    """Every registry test of tests/test_methods.py is here, split by whom it applies to."""
    assert set(CHECKS) - set(APPLICABLE) == NO_UPDATES_ONLY
    assert {
        "test_config_fields_are_documented_and_presets_valid",
        "test_long_preset_is_the_published_update_count_with_quicks_adversary",
        "test_budget_counts_the_configs_updates_and_the_adversary_the_trainer_builds",
        "test_trainer_updates_the_generator_and_returns_finite_scalars",
        "test_trainer_is_deterministic_on_cpu",
        "test_trainer_resumed_from_its_state_continues_bit_for_bit",
        "test_trainer_refuses_a_state_with_other_parts",
    } == set(APPLICABLE)


def test_the_template_makes_updates_in_its_smoke_preset(template):
    spec = template.METHOD
    assert build(spec.config, spec.name, spec.presets["smoke"], {}).updates > 0


@pytest.mark.parametrize("check", APPLICABLE)
def test_the_template_passes_the_registry_check(check, template, request):
    _run_check(check, template.METHOD.name, request)


def test_the_template_keeps_the_layout_rules_of_a_method_file(template):
    path = Path(template.__file__)
    text = path.read_text()
    tree = ast.parse(text)
    doc = ast.get_docstring(tree)
    assert doc and doc.splitlines()[0].strip() and len(text.splitlines()) <= 400
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert "importlib" not in text
    # it imports shared modules only, no method file (as tests/test_layout.py counts them)
    method_files = {m for spec in METHODS.values() for m in method_modules(spec)}
    method_files -= {"methods.pg", "methods.oracle_discriminator", template.__name__}
    imported = imports(path, set(modules(ROOT)))
    assert "methods.base" in imported and not imported & method_files


# a broken template, and the registry check that must then fail
BREAKAGES = {
    "no long preset": (
        '    "long": dict(eval_every=10),',
        "",
        "test_config_fields_are_documented_and_presets_valid",
    ),
    "long with other updates than paper": (
        '"long": dict(eval_every=10)',
        '"long": dict(updates=60, eval_every=10)',
        "test_long_preset_is_the_published_update_count_with_quicks_adversary",
    ),
    "torch's global RNG, not ctx.rng": (
        "cfg.batch_size, ctx.rng,",
        "cfg.batch_size, torch.default_generator,",
        "test_trainer_resumed_from_its_state_continues_bit_for_bit",
    ),
    "the minibatch position left out of the checkpoint": (
        ', "batches": self.batches}',
        "}",
        "test_trainer_resumed_from_its_state_continues_bit_for_bit",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_template_fails_its_registry_check(breakage, load, request):
    old, new, check = BREAKAGES[breakage]
    _, code = template_source(DOC.read_text())
    assert code.count(old) == 1, f"the template no longer has {old!r}"
    module = load(code.replace(old, new))
    with pytest.raises(AssertionError):
        _run_check(check, module.METHOD.name, request)


def test_the_doc_names_every_registry_check_adversary_part_and_preset():
    text = DOC.read_text()
    named = set(re.findall(r"`(test_\w+)`", text.split("## The checks it gets")[1]))
    assert named == set(CHECKS)
    for word in (*contract.ADVERSARY_PARTS, *PRESET_NAMES):
        assert f"`{word}`" in text, word
