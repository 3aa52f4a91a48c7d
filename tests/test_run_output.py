"""What bench.run says at its end: where the report went (never over a fuller one) and how to
open the experiment in MLflow."""

from types import SimpleNamespace

from bench.report.location import mlflow_hint, report_dir
from bench.run import parent_name
from methods import METHODS


def _table(path, methods):
    path.mkdir(parents=True)
    rows = ["method,seeds"] + [f"{m},3" for m in ("oracle", "unigram", *methods)]
    (path / "table.csv").write_text("\n".join(rows) + "\n")


def test_a_subset_rerun_keeps_the_fuller_report_and_writes_beside_it(tmp_path):
    out = tmp_path / "reports" / "exp"
    assert report_dir(out, ["mle"], "p1") == (out, None)  # nothing there yet
    _table(out, ["mle", "seqgan", "cot"])
    assert report_dir(out, ["mle", "seqgan"], "p2") == (out / "p2", out)
    assert report_dir(out, ["mle", "seqgan", "cot", "gumbel"], "p3") == (out, None)  # a superset


def test_a_report_without_a_readable_table_is_replaced(tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "table.csv").write_bytes(b"\xff\xfe")
    assert report_dir(out, ["mle"], "p") == (out, None)


def test_the_mlflow_hint_names_the_ui_command_or_the_servers_runs_view():
    local = mlflow_hint("sqlite:///mlflow.db", "7")
    assert local == (
        "MLflow: mlflow ui --backend-store-uri sqlite:///mlflow.db  then  "
        "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning  "
        "(the parent run's Artifacts: report.html)"
    )
    server = mlflow_hint("http://127.0.0.1:5055/", "3")
    assert server.startswith("MLflow: http://127.0.0.1:5055/#/experiments/3?workflowType=mach")


def test_the_parent_run_name_says_preset_methods_and_seeds_first():
    every = SimpleNamespace(preset="quick", methods=list(METHODS), seeds=[0, 1, 2])
    expected = f"quick · all {len(METHODS)} · 3 seeds · 12-07 02:10"
    assert parent_name(every, "12-07 02:10") == expected
    few = SimpleNamespace(preset="smoke", methods=["mle", "seqgan", "cot", "rloo"], seeds=[0])
    assert parent_name(few, "t") == "smoke · mle,seqgan,cot +1 · 1 seed · t"
