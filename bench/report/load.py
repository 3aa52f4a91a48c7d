"""A finished experiment's frames, read from the MLflow store alone: results, sweeps, curves.

Stores written by earlier versions are read too: their sweeps as histories, their learning curves
under older names (`LEGACY_KEYS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics.evaluate import DIVERGENCES, parse_sweep_key
from bench.store.tracker import Tracker


def tidy_results(tracker: Tracker, parent: str) -> pd.DataFrame:
    """One row per (method, seed, metric): kind, method, seed, status, metric, value. A cell
    the invocation skipped because another one was running it (and that has not finished
    since) is one row with status 'running elsewhere' and no value; a cell run with no
    `cell_status` tag (training now, or killed before its end) has status 'not finished'."""
    rows = [
        dict(kind="method", method=method, seed=seed, status="running elsewhere")
        | dict(run_id=f"busy:{method}/{seed}", metric="", value=np.nan)
        for method, seed in tracker.busy_cells(parent)
    ]
    for run in tracker.cells(parent):
        tags = run.data.tags
        if tags.get("kind") == "pretrain":  # the shared pre-training: not a row of the table
            continue
        base = dict(
            kind=tags.get("kind", "method"),
            method=tags.get("method", "?"),
            seed=int(tags.get("seed", -1)),
            # no cell_status yet: the cell is still training, or its process died before
            # recording an end; which of the two, the store alone cannot tell
            status=tags.get("cell_status", "not finished"),
            run_id=run.info.run_id,
        )
        rows += [base | dict(metric=k, value=v) for k, v in run.data.metrics.items()]
        if not run.data.metrics:
            rows.append(base | dict(metric="", value=np.nan))
    return pd.DataFrame(
        rows, columns=["kind", "method", "seed", "status", "run_id", "metric", "value"]
    )


SWEEP_COLUMNS = ["method", "seed", "alpha", "nll_oracle", "nll_test", *DIVERGENCES]


def sweep_frame(tracker: Tracker, tidy: pd.DataFrame) -> pd.DataFrame:
    """The temperature sweeps: method, seed, alpha, nll_oracle, nll_test and the divergences
    (one row per alpha, in alpha order per run; a divergence NaN where a run has not logged
    it). Read from the runs' `sweep_key` metrics; runs of stores written before them (one
    `sweep/*` history over steps round(100 * alpha)) from those histories."""
    runs = tidy[(tidy.kind == "method") & (tidy.status == "finished")]
    rows = []
    for run_id, part in runs.groupby("run_id", sort=False):
        first = part.iloc[0]
        points: dict[float, dict[str, float]] = {}
        for key, value in zip(part.metric, part.value, strict=True):
            parsed = parse_sweep_key(key)
            if parsed is not None:
                points.setdefault(parsed[1], {})[parsed[0].removeprefix("sweep/")] = value
        if not points and "sweep/alpha" in set(part.metric):
            points = _legacy_sweep(tracker, run_id)
        rows += [
            dict(method=first.method, seed=first.seed, alpha=a)
            | {k: p.get(k, np.nan) for k in SWEEP_COLUMNS[3:]}
            for a, p in sorted(points.items())
        ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def _legacy_sweep(tracker: Tracker, run_id: str) -> dict[float, dict[str, float]]:
    """A sweep logged by code before `sweep_key`: histories sweep/alpha, sweep/nll_oracle and
    sweep/nll_test over steps round(100 * alpha)."""
    hist = {
        k: dict(tracker.history(run_id, f"sweep/{k}")) for k in ("alpha", "nll_oracle", "nll_test")
    }
    return {
        a: dict(nll_oracle=hist["nll_oracle"][step], nll_test=hist["nll_test"][step])
        for step, a in hist["alpha"].items()
    }


# learning-curve keys under their names in older stores: `eval/*`, then `curve/*` (renamed so
# that `final/*`, the headline numbers, sorts before every other namespace in MLflow's lists)
LEGACY_KEYS = {
    f"learning_curve/{k}": (f"curve/{k}", f"eval/{k}") for k in ("nll_oracle", "nll_test")
}


def curves(tracker: Tracker, tidy: pd.DataFrame, key: str) -> pd.DataFrame:
    """Long frame of a learning curve: method, seed, step, value (from MLflow metric history;
    a run without `key` is read under the first of its LEGACY_KEYS names that it has)."""
    runs = tidy[tidy.kind == "method"].drop_duplicates("run_id")
    rows = [
        dict(method=r.method, seed=r.seed, step=step, value=value)
        for r in runs.itertuples()
        for step, value in _history(tracker, r.run_id, key)
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "step", "value"])


def _history(tracker: Tracker, run_id: str, key: str) -> list[tuple[int, float]]:
    for name in (key, *LEGACY_KEYS.get(key, ())):
        if points := tracker.history(run_id, name):
            return points
    return []


def updates_made(tracker: Tracker, tidy: pd.DataFrame) -> pd.DataFrame:
    """Generator updates each finished method cell made: the step of its learning curve's
    last point (its last evaluation: fewer than its config's count when it stopped early, as
    `mle-es` does). Columns method, seed, updates; a cell without a curve has no row."""
    runs = tidy[(tidy.kind == "method") & (tidy.status == "finished")].drop_duplicates("run_id")
    rows = [
        dict(method=r.method, seed=r.seed, updates=max(step for step, _ in points))
        for r in runs.itertuples()
        if (points := _history(tracker, r.run_id, "learning_curve/nll_oracle"))
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "updates"])
