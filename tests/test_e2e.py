"""End to end: `python -m bench.run` on the smoke preset into a temporary MLflow store.

One invocation (every registered method, two seeds) is shared by the tests below; the
per-method checks are parametrized from the registry.
"""

import math

import pandas as pd
import pytest
from mlflow import MlflowClient

from bench.report import __main__ as report_cli
from bench.report.publish import PARENT_METRICS
from bench.report.write import REPORT_FILES
from bench.run import main
from methods import METHODS
from methods.config import build

# methods whose smoke preset makes generator updates (the `pretrained` row makes none)
UPDATES = {n: build(s.config, n, s.presets["smoke"], {}).updates for n, s in METHODS.items()}


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


def test_reverse_kl_is_nonnegative_for_every_row_and_zero_for_the_oracle(smoke_run):
    """KL(G‖P) >= 0 in expectation for any G: every method's and reference row's estimate is
    above -3 standard errors; the oracle scored against itself is exactly 0."""
    tidy = pd.read_csv(smoke_run["out"] / "results.csv")
    wide = tidy.pivot_table(index=["method", "seed"], columns="metric", values="value")
    assert len(wide) >= 2 * len(METHODS) + 3
    assert (wide["final/reverse_kl"] >= -3 * wide["final/reverse_kl_se"]).all()
    assert (wide["final/forward_kl"] >= -3 * wide["final/forward_kl_se"]).all()
    oracle = wide.loc["oracle"].iloc[0]
    assert oracle["final/reverse_kl"] == oracle["final/forward_kl"] == oracle["final/jsd"] == 0
    assert (wide["final/jsd"] <= math.log(2) + 1e-9).all()


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
        "final/reverse_kl",
        "final/forward_kl",
        "final/jsd",
        "sweep/best_jeffreys",
        *(["perf/update_ms_mean"] if UPDATES[name] else []),
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
    history = client.get_metric_history(run.info.run_id, "learning_curve/nll_oracle")
    steps = [m.step for m in history]
    assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= min(3, 1 + UPDATES[name])
    assert run.data.params["method"] == name and run.data.tags["git_commit"]


def test_report_rebuilds_the_same_table_from_mlflow_alone(smoke_run, capsys):
    out = smoke_run["root"] / "rebuilt"
    rc = report_cli.main(
        ["--experiment", "e2e", "--tracking-uri", smoke_run["uri"], "--reports-dir", str(out)]
    )
    assert rc == 0
    rebuilt = pd.read_csv(out / "e2e" / "table.csv", index_col="method", dtype=str)
    pd.testing.assert_frame_equal(rebuilt, _table(smoke_run))
    assert (out / "e2e" / "results.csv").read_text() == (
        smoke_run["out"] / "results.csv"
    ).read_text()


def _parent(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    (parent,) = client.search_runs([exp.experiment_id], "tags.kind = 'parent'")
    return parent


def check_parent_has_the_answer(client: MlflowClient, experiment: str, out) -> None:
    """The parent run carries the report: its files as artifacts, the table as description,
    summary metrics equal to summary.csv's numbers (shared with the tracking-server test)."""
    parent = _parent(client, experiment)
    listed = {f.path: f.file_size for f in client.list_artifacts(parent.info.run_id)}
    assert set(REPORT_FILES) <= set(listed)
    for name in REPORT_FILES:
        assert listed[name] == (out / name).stat().st_size, name
    note = parent.data.tags["mlflow.note.content"]
    assert pd.read_csv(out / "table.csv", index_col="method").index[0] in note
    assert "| method" in note and "NLL-oracle ↓" in note  # the Markdown table itself
    numbers = pd.read_csv(out / "summary.csv")
    assert list(numbers.columns) == ["method", "metric", "mean", "lower", "upper", "n"]
    expected = {}
    for r in numbers[numbers.metric.isin(PARENT_METRICS)].itertuples():
        name = f"{r.method}/{PARENT_METRICS[r.metric]}"
        for stat, value in (("mean", r.mean), ("lo", r.lower), ("hi", r.upper)):
            if not math.isnan(value):  # no interval for one seed: no _lo, _hi
                expected[f"{name}_{stat}"] = value
    assert expected and parent.data.metrics == pytest.approx(expected, rel=1e-12)
    assert "mle/nll_oracle_mean" in expected
    assert any(k.endswith("/sweep_oracle_at_mle_test_mean") for k in expected)


def test_parent_run_has_the_report_table_and_summary_metrics(smoke_run):
    client = MlflowClient(tracking_uri=smoke_run["uri"])
    check_parent_has_the_answer(client, "e2e", smoke_run["out"])
    metrics = _parent(client, "e2e").data.metrics
    assert {"mle/nll_oracle_lo", "mle/nll_oracle_hi", "seqgan/nll_test_lo"} <= set(metrics)
    numbers = pd.read_csv(smoke_run["out"] / "summary.csv")
    mle = numbers[(numbers.method == "mle") & (numbers.metric == "final/nll_oracle")].iloc[0]
    assert mle.n == 2 and mle.lower < mle["mean"] < mle.upper  # two seeds: an interval
    tidy = pd.read_csv(smoke_run["out"] / "results.csv")
    values = tidy[(tidy.method == "mle") & (tidy.metric == "final/nll_oracle")].value
    assert mle["mean"] == pytest.approx(values.mean())
    exp = client.get_experiment_by_name("e2e")
    assert exp.artifact_location.startswith(smoke_run["root"].as_uri())  # not ./mlruns


def test_no_child_metric_shows_one_point_of_a_sweep_or_curve_as_its_value(smoke_run):
    """Every key holds one number or one curve: the sweep is one key per alpha, each logged
    once, and equal to sweep.csv; the learning curve is learning_curve/*, not mistaken for
    final/*, which sorts before every other namespace."""
    client = MlflowClient(tracking_uri=smoke_run["uri"])
    sweep = pd.read_csv(smoke_run["out"] / "sweep.csv")
    tidy = pd.read_csv(smoke_run["out"] / "results.csv")
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'method'")
    assert runs
    for run in runs:
        keys = set(run.data.metrics)
        assert not keys & {"sweep/nll_oracle", "sweep/nll_test", "sweep/alpha"}
        assert not {k for k in keys if k.startswith("eval/")}
        curve = {"learning_curve/nll_oracle", "learning_curve/nll_test"}
        assert curve | {"sweep/best_sum", "sweep/best_alpha"} <= keys
        namespaces = sorted({k.split("/")[0] for k in keys})
        assert namespaces[0] == "final", namespaces  # the headline numbers list first
        method, seed = run.data.tags["method"], int(run.data.tags["seed"])
        mine = sweep[(sweep.method == method) & (sweep.seed == seed)]
        assert len(mine) >= 2
        for r in mine.itertuples():
            for k in ("nll_oracle", "nll_test"):
                key = f"sweep/{k}/a{r.alpha!r}"
                history = client.get_metric_history(run.info.run_id, key)
                assert [m.value for m in history] == [getattr(r, k)], key  # once, exactly
        rows = tidy[(tidy.method == method) & (tidy.seed == seed)].set_index("metric").value
        total = mine.nll_oracle + mine.nll_test
        assert run.data.metrics["sweep/best_sum"] == rows["sweep/best_sum"] == total.min()
        assert run.data.metrics["sweep/best_alpha"] == mine.alpha[total.idxmin()]


def test_runs_carry_mlflow_context_fields_and_the_task_datasets(smoke_run):
    """User, source and version are MLflow's own fields; the train and test splits are logged
    as datasets named by the task identity, with a digest of their data."""
    import subprocess

    client = MlflowClient(tracking_uri=smoke_run["uri"])
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id], "tags.kind != 'reference'")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for run in runs:
        tags = run.data.tags
        assert tags["mlflow.user"] and tags["mlflow.source.name"] == "python -m bench.run"
        assert tags.get("mlflow.source.git.commit", "") == commit.strip()
        assert {"sacrebleu_version", "numpy_version", "torch_version"} <= set(tags)
        logged = client.get_run(run.info.run_id).inputs.dataset_inputs  # search_runs omits them
        inputs = {i.tags[0].value: i.dataset for i in logged}
        assert set(inputs) == {"train", "test"}
        assert inputs["train"].name == f"{tags['oracle']}/train" and inputs["train"].digest
        assert inputs["train"].digest != inputs["test"].digest


def test_each_method_curve_starts_at_its_own_step_0_and_the_pretraining_is_logged_once(
    smoke_run,
):
    client = MlflowClient(tracking_uri=smoke_run["uri"])
    exp = client.get_experiment_by_name("e2e")
    pretrain = client.search_runs([exp.experiment_id], "tags.kind = 'pretrain'")
    assert sorted(r.data.tags["seed"] for r in pretrain) == ["0", "1"]  # once per seed
    (first,) = [r for r in pretrain if r.data.tags["seed"] == "0"]
    history = client.get_metric_history(first.info.run_id, "learning_curve/nll_oracle")
    assert [m.step for m in history][-1] == 2 * (1000 // 64)  # smoke: 2 epochs of 1,000
    for name in METHODS:
        (run,) = client.search_runs(
            [exp.experiment_id], f"tags.method = '{name}' and tags.seed = '0'"
        )
        own = client.get_metric_history(run.info.run_id, "learning_curve/nll_oracle")
        steps = [m.step for m in own]
        metrics = run.data.metrics
        assert steps[0] == 0 and steps[-1] <= int(run.data.params[f"{name}.updates"])
        if steps[-1] < int(run.data.params[f"{name}.updates"]):  # only an early stop ends sooner
            assert metrics["train/stop"] > 0
        # step 0 of every method: the pre-trained generator, the pre-training's last point
        assert own[0].value == history[-1].value
        assert metrics["perf/pretrain_s"] >= 0
        assert (metrics["perf/train_s"] > 0) == (UPDATES[name] > 0)
    assert "pretrain" not in _table(smoke_run).index


def test_every_cell_logs_where_its_time_went(smoke_run):
    timing = pd.read_csv(smoke_run["out"] / "timing.csv", index_col="method")
    assert set(timing.index) == set(METHODS) and (timing.seeds == 2).all()
    always = ["pretrain_load", "setup", "curve_eval", "final_sample", "final_score"]
    always += ["final_bleu", "final_self_bleu", "sweep", "tracking"]
    for part in always:
        assert (timing[part] > 0).all(), part
    assert list(timing.train > 0) == [UPDATES[m] > 0 for m in timing.index]
    assert (timing.other >= 0).all()  # the parts are disjoint stretches of the cell
    readme = (smoke_run["out"] / "README.md").read_text()
    assert "## Where the time goes" in readme


def test_verdicts_csv_has_its_columns_and_only_the_four_words(smoke_run):
    from bench.report.verdicts import COLUMNS as VERDICT_COLUMNS
    from bench.report.verdicts import VERDICT_WORDS

    out = smoke_run["out"]
    v = pd.read_csv(out / "verdicts.csv")
    assert list(v.columns) == VERDICT_COLUMNS and len(v) > 0
    assert set(v.verdict) <= set(VERDICT_WORDS)
    assert set(v.baseline) >= {"pretrained", "mle"} and (v.n == 2).all()
    assert not set(v.method) & {"pretrained", "mle-es", "mle"}
    text = (out / "README.md").read_text()
    if "mle-es" not in set(v.baseline):  # it kept the start on both seeds: pretrained's rows
        assert "`mle-es` equals `pretrained` on every seed and metric here" in text
    assert "## Verdicts" in text and f"all {len(v)} comparisons" in text
    assert "![divergence frontier](frontier.png)" in text
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
