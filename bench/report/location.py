"""Where a report goes and how to open it: never over a fuller report, and MLflow's address."""

from __future__ import annotations

from pathlib import Path


def report_dir(out_dir: Path, methods: list[str], parent: str) -> tuple[Path, Path | None]:
    """Where this invocation's report goes, and the fuller report it must not replace (or None):
    a report already in `out_dir` whose table has a method this invocation did not run is kept,
    and this one goes to `out_dir/<parent run id>/`."""
    table = out_dir / "table.csv"
    if not table.is_file():
        return out_dir, None
    try:
        earlier = {line.split(",", 1)[0] for line in table.read_text().splitlines()[1:]}
    except (OSError, UnicodeDecodeError):
        return out_dir, None
    if earlier - {"oracle", "unigram", "uniform"} - set(methods):
        return out_dir / parent, out_dir
    return out_dir, None


def mlflow_hint(uri: str, experiment_id: str) -> str:
    """How to look at this experiment in MLflow's UI: the command for a local store, and the
    runs view's address (`workflowType=machine_learning`: without it MLflow 3 may open its
    GenAI pages)."""
    view = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"MLflow: {uri.rstrip('/')}/{view}  (the parent run's Artifacts: report.html)"
    return (
        f"MLflow: mlflow ui --backend-store-uri {uri}  then  http://127.0.0.1:5000/{view}  "
        "(the parent run's Artifacts: report.html)"
    )
