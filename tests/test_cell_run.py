"""A cell's MLflow run ends with exactly one status on every path out of its block."""

import pytest

from bench.cells.cell_run import CellRun
from bench.cells.results import CellResult, Status
from bench.cells.timelimit import CellTimeout, time_limit
from bench.store.tracker import Tracker
from bench.train.loop import Diverged


def _end(tracker, raise_=None):
    with CellRun(tracker, "cell", {"kind": "method"}, parent="") as run:
        run.log(0, {"final/x": 1.0})
        if raise_ is not None:
            raise raise_
    got = tracker.client.get_run(run.id)
    return run.result, got.info.status, got.data.tags


@pytest.mark.parametrize(
    ("error", "status", "mlflow_status", "tags"),
    [
        (None, Status.FINISHED, "FINISHED", {}),
        (
            Diverged(7, "train/g_loss", float("nan")),
            Status.DIVERGED,
            "FAILED",
            {"diverged_step": "7", "diverged_metric": "train/g_loss", "diverged_value": "nan"},
        ),
        (CellTimeout(2.5), Status.TIMEOUT, "KILLED", {"timeout_s": "2.5"}),
        (ValueError("bad"), Status.FAILED, "FAILED", {"error": "ValueError: bad"}),
    ],
)
def test_each_way_out_ends_the_run_once(mlflow_uri, error, status, mlflow_status, tags):
    tracker = Tracker(mlflow_uri, "runs")
    result, got_status, got_tags = _end(tracker, error)
    assert result.status is status and got_status == mlflow_status
    assert got_tags["cell_status"] == status.value
    assert {k: got_tags[k] for k in tags} == tags


def test_a_failure_keeps_its_traceback_and_says_where(mlflow_uri):
    tracker = Tracker(mlflow_uri, "runs")
    with CellRun(tracker, "cell", {}, parent="") as run:
        raise ValueError("bad")
    files = [f.path for f in tracker.client.list_artifacts(run.id)]
    assert files == ["traceback.txt"]
    assert run.result == CellResult(
        Status.FAILED, "failed: ValueError: bad (traceback.txt in its MLflow run)"
    )


def test_ctrl_c_ends_the_run_killed_and_goes_on(mlflow_uri):
    tracker = Tracker(mlflow_uri, "runs")
    with pytest.raises(KeyboardInterrupt):
        with CellRun(tracker, "cell", {}, parent="") as run:
            raise KeyboardInterrupt
    got = tracker.client.get_run(run.id)
    assert (got.info.status, got.data.tags["cell_status"]) == ("KILLED", "killed")


def test_time_limit_raises_cell_timeout_with_its_seconds():
    import time

    with pytest.raises(CellTimeout) as info:
        with time_limit(0.05):
            time.sleep(5)
    assert info.value.seconds == 0.05


def test_a_timeout_inside_no_grad_leaves_gradients_on():
    """The alarm lands at random points of a tight no_grad loop, some inside no_grad's exit
    before it switches gradients back on (without the restore: ~1 in 4 of these tries)."""
    import torch

    left_off = 0
    for _ in range(60):
        with pytest.raises(CellTimeout):
            with time_limit(0.0005):
                while True:
                    with torch.no_grad():
                        pass
        left_off += not torch.is_grad_enabled()
        torch.set_grad_enabled(True)
    assert left_off == 0
