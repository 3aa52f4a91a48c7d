"""The report's MLE pre-training section: which runs, which generator, what the curves say."""

import time

import numpy as np
import pandas as pd
import torch

from bench.report.pretrain import (
    kept_points,
    overfit_summary,
    pretrain_curves,
    pretrain_runs,
    pretrain_section,
)
from bench.run import main
from bench.store.tracker import Tracker

PARAMS = {
    "pretrain.epochs": "6",
    "pretrain.lr": "0.01",
    "pretrain.batch_size": "64",
    "pretrain.early_stop_patience": "0",
    "bench.n_train": "640",
}


def _curves(seed_values: dict[int, tuple[list[float], list[float]]], best=None) -> pd.DataFrame:
    rows = []
    for seed, (oracle, test) in seed_values.items():
        for epoch, (o, t) in enumerate(zip(oracle, test, strict=True)):
            rows.append(dict(seed=seed, epoch=float(epoch), metric="nll_oracle", value=o))
            rows.append(dict(seed=seed, epoch=float(epoch), metric="nll_test", value=t))
    for seed, epoch in (best or {}).items():
        rows.append(dict(seed=seed, epoch=float(epoch), metric="best_step", value=epoch * 10.0))
    return pd.DataFrame(rows)


# NLL-test (e - 3)^2 + 8 is lowest at epoch 3; NLL-oracle falls every epoch
ORACLE = [10.0 - 0.2 * e for e in range(7)]
TEST = [(e - 3) ** 2 + 8.0 for e in range(7)]


def test_the_kept_generator_is_the_last_evaluation_or_early_stoppings_best():
    curves = _curves({0: (ORACLE, TEST), 1: (ORACLE, TEST)}, best={1: 3})
    kept = kept_points(curves).set_index("seed")
    assert kept.loc[0, "kept_epoch"] == 6 and kept.loc[0, "nll_oracle"] == ORACLE[6]
    assert kept.loc[1, "kept_epoch"] == 3 and kept.loc[1, "nll_test"] == 8.0
    assert kept.loc[1, "nll_oracle"] == ORACLE[3] and kept.loc[1, "last_epoch"] == 6
    assert np.isnan(kept.loc[0, "nll_valid"])  # not measured without early stopping


def test_overfitting_is_measured_where_mean_nll_test_is_lowest():
    shifted = [t + 1.0 for t in TEST]
    fit = overfit_summary(_curves({0: (ORACLE, TEST), 1: (ORACLE, shifted)}))
    assert fit["best_test_epoch"] == 3 and fit["best_test"] == 8.5
    assert fit["oracle_at_best_test"] == ORACLE[3]
    assert fit["last_epoch"] == 6 and fit["last_test"] == 17.5
    assert fit["last_oracle"] == ORACLE[6]


def test_the_section_says_overfitting_only_when_the_curves_show_it():
    over = "\n".join(pretrain_section(_curves({0: (ORACLE, TEST)}), PARAMS, "random", "2000"))
    assert "NLL-test is lowest at epoch 3 (8.000" in over and "over-fits" in over
    assert "6 epochs, lr 0.01, batch 64, 640 training sequences, no early stopping" in over
    falling = [10.0 - e for e in range(7)]
    healthy = "\n".join(pretrain_section(_curves({0: (ORACLE, falling)}), PARAMS, "random", "2"))
    assert "over-fits" not in healthy and "lowest at epoch 6" in healthy


def test_on_the_papers_oracle_the_section_shows_table_1s_mle_row():
    curves = _curves({0: (ORACLE, TEST), 1: (ORACLE, TEST)})
    text = "\n".join(pretrain_section(curves, PARAMS, "seqgan-paper", "2000"))
    assert "9.038 (SeqGAN Table 1" in text
    assert "| 8.800 [8.800, 8.800]" in text  # identical seeds: a point interval


def _pretrain_run(tracker, parent, seed, params, data, start, code="src-abc"):
    tags = dict(kind="pretrain", method="pretrain", seed=str(seed), cell_status="finished")
    run = tracker.start(f"pretrain-s{seed}", tags | {"source_version": code}, parent)
    tracker.log_params(run, params)
    tracker.log_datasets(run, "task", {"train": data, "test": data + 1})
    for step, value in ((0, start), (10, start - 1.0)):
        tracker.log_metrics(run, step, {"learning_curve/nll_oracle": value})
        tracker.log_metrics(run, step, {"learning_curve/nll_test": value - 2.0})
    tracker.end(run)
    return run


def test_a_seed_pretrained_by_an_earlier_invocation_is_found_by_its_settings(
    mlflow_uri,
):
    """A seed this invocation did not pre-train: its run is the newest finished pre-training of
    the same seed, source version, pretrain.* params and training data."""
    tracker = Tracker(mlflow_uri, "unlinked")
    data = torch.arange(12).reshape(3, 4)
    params = {"pretrain.epochs": "2", "pretrain.batch_size": "64"}
    old = tracker.start("bench-old", {"kind": "parent"})
    _pretrain_run(tracker, old, 0, params, data, 5.0)  # a match, but an older one
    time.sleep(0.01)  # MLflow orders runs by start time in milliseconds
    match = _pretrain_run(tracker, old, 0, params, data, 9.0)
    _pretrain_run(tracker, old, 0, params | {"pretrain.epochs": "3"}, data, 7.0)  # other recipe
    _pretrain_run(tracker, old, 0, params, data + 5, 6.0)  # other training data
    _pretrain_run(tracker, old, 0, params, data, 4.0, code="src-other")  # other code
    new = tracker.start("bench-new", {"kind": "parent", "source_version": "src-abc"})
    tracker.log_params(new, params | {"seeds": "0,1", "bench.n_train": "640"})
    tracker.log_datasets(new, "task", {"train": data, "test": data + 1})
    own = _pretrain_run(tracker, new, 1, params, data, 8.0)
    runs = pretrain_runs(tracker, new)
    assert {s: r.info.run_id for s, r in runs.items()} == {0: match, 1: own}
    curves = pretrain_curves(tracker, runs, per_epoch=10)
    assert kept_points(curves).nll_oracle.tolist() == [8.0, 7.0]  # each seed's epoch-1 value


def test_a_second_invocation_reports_the_pretraining_it_reused(mlflow_uri, tmp_path):
    """Real bench.run twice: the second reuses seed 0's cell and pre-training from the first,
    and its report still has both seeds' pre-training (curves, section, plot)."""
    common = ["--methods", "mle", "--preset", "smoke", "--tracking-uri", mlflow_uri]
    common += ["--experiment", "reuse", "--reports-dir", str(tmp_path / "reports")]
    common += ["--cache-dir", str(tmp_path / "cache")]
    assert main([*common, "--seeds", "1"]) == 0
    tracker = Tracker(mlflow_uri, "reuse", create=False)
    first = tracker.latest_parent()
    assert main([*common, "--seeds", "2"]) == 0
    second = tracker.latest_parent()
    assert second != first
    runs = pretrain_runs(tracker, second)
    assert sorted(runs) == [0, 1]
    assert runs[0].data.tags["mlflow.parentRunId"] == first  # made by the first invocation
    assert runs[1].data.tags["mlflow.parentRunId"] == second
    out = tmp_path / "reports" / "reuse"
    saved = pd.read_csv(out / "pretrain.csv")
    assert sorted(saved.seed.unique()) == [0, 1]
    assert saved[saved.metric == "nll_oracle"].epoch.max() == 2  # smoke: 2 epochs
    text = (out / "README.md").read_text()
    assert "## MLE pre-training" in text and "pre-training (MLE)" in text
    assert "2 epochs, lr 0.01, batch 64, 1,000 training sequences" in text
    assert (out / "pretrain_curve.png").read_bytes()[:4] == b"\x89PNG"
