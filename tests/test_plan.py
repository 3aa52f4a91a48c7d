"""`bench.run --plan`: what each cell would do, read from a real store, with nothing run."""

import pytest
import torch
from mlflow import MlflowClient

from bench.cells.checkpoint import cell_lock, checkpoint_path, save_checkpoint
from bench.report.plan import Estimate, estimate
from bench.run import main
from bench.store.tracker import Tracker
from tests.test_reliability import _argv, _cell_key_of, _runs


def _all_runs(uri):
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def _plan_rows(out: str) -> dict[tuple[str, int], str]:
    """(method, seed) -> the table row's text, from the printed plan."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 4 and cells[1].isdigit():
            rows[cells[0], int(cells[1])] = line
    return rows


def test_plan_on_a_store_that_does_not_exist_creates_no_store_and_no_data(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    argv = _argv(tmp_path, uri, "--methods", "mle,seqgan", "--plan")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert set(_plan_rows(out)) == {("mle", 0), ("seqgan", 0)}
    assert "oracle: compute, unigram: compute, uniform: compute" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no cache, no reports


def test_the_plans_reference_names_are_the_reference_rows(task):
    from bench.metrics.evaluate import reference_models
    from bench.report.plan import REFERENCE_NAMES

    assert tuple(reference_models(task)) == REFERENCE_NAMES


def test_plan_on_an_empty_store_trains_every_cell_and_writes_nothing(tmp_path, mlflow_uri, capsys):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--seeds", "2", "--plan")
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = _plan_rows(out)
    assert set(rows) == {("mle", 0), ("mle", 1)}
    assert all(" train " in row and "no estimate" in row for row in rows.values())
    assert "0 reused, 0 resumed, 0 running elsewhere, 2 to train" in out
    assert "oracle: compute" in out
    assert _all_runs(mlflow_uri) == []  # no cell, no parent
    assert MlflowClient(tracking_uri=mlflow_uri).get_experiment_by_name("rel") is None
    assert not (tmp_path / "reports").exists()
    assert not (tmp_path / "cache" / "checkpoints").exists()  # no lock files either


@pytest.mark.slow
def test_plan_after_a_run_shows_the_reused_cell_and_estimates_the_rest(
    tmp_path, mlflow_uri, capsys
):
    one = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--bench.sweep-alphas", "1")
    assert main(one) == 0
    (run,) = _runs(mlflow_uri)
    est = run.data.metrics["perf/train_s"] + run.data.metrics["perf/setup_s"]
    before = {r.info.run_id for r in _all_runs(mlflow_uri)}
    capsys.readouterr()
    assert main([*one, "--seeds", "2", "--plan"]) == 0
    out = capsys.readouterr().out
    rows = _plan_rows(out)
    assert " reuse " in rows["mle", 0] and run.info.run_id in rows["mle", 0]
    assert " train " in rows["mle", 1] and "est. from 1 earlier run" in rows["mle", 1]
    assert "1 reused, 0 resumed, 0 running elsewhere, 1 to train; work here: est. " in out
    assert "oracle: reuse run " in out
    assert {r.info.run_id for r in _all_runs(mlflow_uri)} == before  # no new parent
    assert "note:" not in out  # the earlier run is of this code version

    tracker = Tracker(mlflow_uri, "rel", create=False)  # as after a code edit:
    assert estimate(tracker, "mle", "smoke", "src-edited") == Estimate(pytest.approx(est), 1, 1)

    with cell_lock(tmp_path / "cache", _cell_key_of([*one, "--seeds", "2"], "mle", 1)[1]):
        assert main([*one, "--seeds", "2", "--plan"]) == 0  # as a live invocation holds it
    assert " elsewhere " in _plan_rows(capsys.readouterr().out)["mle", 1]

    assert main([*one, "--seeds", "2", "--plan", "--force"]) == 0
    rows = _plan_rows(capsys.readouterr().out)
    assert all(" train " in row for row in rows.values())  # --force: nothing reused


def test_plan_says_a_checkpointed_cell_resumes_from_its_update(tmp_path, mlflow_uri, capsys):
    argv = _argv(tmp_path, mlflow_uri, "--methods", "mle", "--seeds", "2")
    plan, key = _cell_key_of(argv, "mle", 1)
    state = {
        "trainer": {},
        "rng": torch.Generator().get_state(),
        "loop": {"updates": 4, "train_s": 1.0, "perf_rows": []},
        "curve": [],
        "setup_s": 0.0,
    }
    save_checkpoint(checkpoint_path(plan.cache_dir, key), state)
    assert main([*argv, "--plan"]) == 0
    out = capsys.readouterr().out
    rows = _plan_rows(out)
    assert " resume " in rows["mle", 1] and "update 4 of 10" in rows["mle", 1]
    assert " train " in rows["mle", 0]
    assert "0 reused, 1 resumed, 0 running elsewhere, 1 to train" in out
    assert checkpoint_path(plan.cache_dir, key).exists()  # the plan leaves it alone
