"""The MLflow store under concurrency and misuse: first use by two processes, reading a store
that is not there, runs of a dead invocation."""

import subprocess
import sys
import time

import pytest

from bench.store.tracker import Tracker, TrackingError

OPEN = """
import sys, time
from bench.store.tracker import Tracker
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
tracker = Tracker(sys.argv[1], "same")
tracker.end(tracker.start("run", {"kind": "parent"}))
print(tracker.experiment_id)
"""


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_two_processes_opening_a_new_store_at_once_both_work(tmp_path, trial):
    """Without the init lock, MLflow's table creation races (alembic) and one or both die."""
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    start = str(time.time() + 4.0)  # both are imported and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, uri, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-500:] for _, err in outs]
    ids = {out.decode().strip() for out, _ in outs}
    assert len(ids) == 1  # one experiment, created once
    tracker = Tracker(uri, "same", create=False)
    assert len(tracker.client.search_runs([tracker.experiment_id])) == 2


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path):
    with pytest.raises(TrackingError, match="no MLflow store at"):
        Tracker(f"sqlite:///{tmp_path / 'absent.db'}", "e", create=False)
    assert list(tmp_path.iterdir()) == []


def test_only_the_databases_own_errors_count_as_the_store_failing():
    """bench.run words a store error as 'refused a write'; MLflow's errors about what the
    caller asked (a param changed) must keep their traceback."""
    import sqlite3

    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    from bench.store.faults import first_line, is_store_error

    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    try:
        try:
            raise full
        except OperationalError as e:
            raise MlflowException("autoflush note\n" + str(e)) from e
    except MlflowException as wrapped:
        assert is_store_error(wrapped)
        assert first_line(wrapped) == "(sqlite3.OperationalError) database or disk is full"
    assert is_store_error(full)
    assert not is_store_error(MlflowException("Changing param values is not allowed"))
    assert not is_store_error(ValueError("x"))
