"""End to end: `python -m bench.run` on the smoke preset into a temporary MLflow store.

One invocation (every registered method, two seeds) is shared by the tests below; the
per-method checks are parametrized from the registry.
"""

import math

import pandas as pd
import pytest
from mlflow import MlflowClient

from bench import report
from bench.run import main
from methods import METHODS


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, _mlflow_template):
    import shutil

    root = tmp_path_factory.mktemp("e2e")
    shutil.copy(_mlflow_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    argv = [
        "--methods",
        "all",
        "--seeds",
        "2",
        "--preset",
        "smoke",
        "--tracking-uri",
        uri,
        "--experiment",
        "e2e",
        "--reports-dir",
        str(root / "reports"),
        "--cache-dir",
        str(root / "cache"),
    ]
    assert main(argv) == 0
    return dict(uri=uri, root=root, out=root / "reports" / "e2e")


def _table(smoke_run) -> pd.DataFrame:
    return pd.read_csv(smoke_run["out"] / "table.csv", index_col="method", dtype=str)


def test_report_files_are_written(smoke_run):
    out = smoke_run["out"]
    for name in ("README.md", "results.csv", "table.csv", "nll_oracle_curve.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "nll_oracle_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "NLL-oracle" in (out / "README.md").read_text()


def test_reference_rows_bracket_the_task(smoke_run):
    tidy = pd.read_csv(smoke_run["out"] / "results.csv")
    nll = tidy[tidy.metric == "final/nll_oracle"].groupby("method").value.mean()
    test = tidy[tidy.metric == "final/nll_test"].groupby("method").value.mean()
    assert nll["oracle"] < nll["unigram"] < nll["uniform"]
    assert test["uniform"] == pytest.approx(math.log(5000), abs=1e-4)  # exactly ln V


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_a_finished_row_with_finite_metrics(smoke_run, name):
    tidy = pd.read_csv(smoke_run["out"] / "results.csv")
    rows = tidy[tidy.method == name]
    assert set(rows.seed) == {0, 1} and set(rows.status) == {"finished"}
    for metric in (
        "final/nll_oracle",
        "final/nll_test",
        "final/bleu4",
        "final/self_bleu4",
        "perf/update_ms_mean",
    ):
        values = rows[rows.metric == metric].value
        assert len(values) == 2 and values.map(math.isfinite).all(), metric
    assert "[" in _table(smoke_run).loc[name, "NLL-oracle ↓"]  # two seeds: an interval


@pytest.mark.parametrize("name", sorted(METHODS))
def test_learning_curve_is_stored_with_steps(smoke_run, name):
    client = MlflowClient(tracking_uri=smoke_run["uri"])
    run = next(
        r
        for r in client.search_runs(
            [client.get_experiment_by_name("e2e").experiment_id],
            f"tags.method = '{name}' and tags.seed = '0'",
        )
    )
    history = client.get_metric_history(run.info.run_id, "curve/nll_oracle")
    steps = [m.step for m in history]
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 3
    assert run.data.params["method"] == name and run.data.tags["git_commit"]


def test_report_rebuilds_the_same_table_from_mlflow_alone(smoke_run, capsys):
    out = smoke_run["root"] / "rebuilt"
    rc = report.main(
        ["--experiment", "e2e", "--tracking-uri", smoke_run["uri"], "--reports-dir", str(out)]
    )
    assert rc == 0
    rebuilt = pd.read_csv(out / "e2e" / "table.csv", index_col="method", dtype=str)
    pd.testing.assert_frame_equal(rebuilt, _table(smoke_run))
    assert (out / "e2e" / "results.csv").read_text() == (
        smoke_run["out"] / "results.csv"
    ).read_text()
