"""The shared MLE pre-training of one invocation, as a section of its report.

Every method of an invocation starts from its seed's pre-training, and the SeqGAN paper's MLE row
is that pre-training alone (the `long` and `paper` presets run the original code's recipe: 120
epochs, lr 1e-2, batch 64, 9,984 sequences). Loading (`pretrain_runs`, `pretrain_curves`) reads
the Tracker; `kept_points` and `overfit_summary` are pure; `pretrain_section` renders Markdown.
The plot is `bench.report.plots.plot_pretrain_curves`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.published import NLL_ORACLE
from bench.report.stats import mean_ci
from bench.store.tracker import Tracker

CURVE_METRICS = ("nll_oracle", "nll_test", "nll_valid")  # learning_curve/<name>
PRETRAIN_PARAMS = "pretrain."


def pretrain_runs(tracker: Tracker, parent: str) -> dict[int, object]:
    """Seed -> the finished pre-training run the invocation `parent`'s cells started from.

    Its own child run where it trained one; for a seed it did not pre-train (an earlier
    invocation did, and this one reused it, or reused every cell of the seed), the newest
    finished pre-training run in the experiment with the same seed, source version (the
    pre-training's code version, which the parent run's tag holds), `pretrain.*` params and
    training-set digest. The pre-training key
    also hashes the device, the curve settings and the torch version, which this does not
    check: one experiment that mixes those can pick the wrong run."""
    parent_run = tracker.client.get_run(parent)
    found = {
        int(r.data.tags["seed"]): r
        for r in tracker.children(parent)
        if r.data.tags.get("kind") == "pretrain" and r.data.tags.get("cell_status") == "finished"
    }
    seeds = [int(s) for s in parent_run.data.params.get("seeds", "").split(",") if s]
    for seed in (s for s in seeds if s not in found):
        run = _matching_pretrain(tracker, parent_run, seed)
        if run is not None:
            found[seed] = run
    return dict(sorted(found.items()))


def _matching_pretrain(tracker: Tracker, parent_run, seed: int):
    code = parent_run.data.tags.get("source_version", "")
    candidates = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.kind = 'pretrain' and tags.cell_status = 'finished' and tags.seed = '{seed}'"
        f" and tags.source_version = '{code}'",
        order_by=["attributes.start_time DESC"],
    )
    want = _pretrain_params(parent_run)
    digest = _train_digest(parent_run)
    for run in candidates:
        if _pretrain_params(run) == want and _train_digest(run) == digest:
            return run
    return None


def _pretrain_params(run) -> dict[str, str]:
    return {k: v for k, v in run.data.params.items() if k.startswith(PRETRAIN_PARAMS)}


def _train_digest(run) -> str | None:
    for d in run.inputs.dataset_inputs:
        if any(t.key == "mlflow.data.context" and t.value == "train" for t in d.tags):
            return d.dataset.digest
    return None


def pretrain_curves(tracker: Tracker, runs: dict[int, object], per_epoch: int) -> pd.DataFrame:
    """The runs' learning curves: seed, epoch (updates / `per_epoch`), metric (a CURVE_METRICS
    name), value; plus one row per seed of metric 'best_step' (the update early stopping kept,
    as logged) where early stopping was on."""
    rows = []
    for seed, run in runs.items():
        for name in CURVE_METRICS:
            rows += [
                dict(seed=seed, epoch=step / per_epoch, metric=name, value=value)
                for step, value in tracker.history(run.info.run_id, f"learning_curve/{name}")
            ]
        best = run.data.metrics.get("early_stop/best_step")
        if best is not None:
            rows.append(dict(seed=seed, epoch=best / per_epoch, metric="best_step", value=best))
    return pd.DataFrame(rows, columns=["seed", "epoch", "metric", "value"])


def kept_points(curves: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the evaluation of the generator the pre-training kept (the methods' start):
    early stopping's best epoch where the curves hold one, else the last evaluation.

    `curves`: `pretrain_curves`'s frame. Returns one row per seed: seed, kept_epoch, last_epoch
    and each CURVE_METRICS value at kept_epoch (NaN where not measured); NLLs lower is better.
    """
    rows = []
    for seed, part in curves.groupby("seed"):
        points = part[part.metric != "best_step"]
        best = part[part.metric == "best_step"]
        last = float(points.epoch.max())
        kept = float(best.epoch.iloc[0]) if len(best) else last
        at = points[np.isclose(points.epoch, kept)].set_index("metric").value
        rows.append(
            dict(seed=seed, kept_epoch=kept, last_epoch=last)
            | {m: float(at[m]) if m in at.index else np.nan for m in CURVE_METRICS}
        )
    return pd.DataFrame(rows, columns=["seed", "kept_epoch", "last_epoch", *CURVE_METRICS])


def overfit_summary(curves: pd.DataFrame) -> dict[str, float]:
    """Where the mean-over-seeds NLL-test curve is lowest, against its end (lower is better).

    `curves`: `pretrain_curves`'s frame. Returns best_test_epoch, best_test (the lowest mean
    NLL-test), oracle_at_best_test (mean NLL-oracle at that epoch), last_epoch, last_test and
    last_oracle (means at the last epoch every seed evaluated). last_test > best_test while
    last_oracle < oracle_at_best_test is over-fitting: the generator keeps moving towards the
    oracle's modes while it loses held-out likelihood."""
    mean = curves[curves.metric.isin(("nll_oracle", "nll_test"))].pivot_table(
        index="epoch", columns="metric", values="value", aggfunc="mean"
    )
    n_seeds = curves.groupby("epoch").seed.nunique()
    mean = mean[n_seeds.reindex(mean.index) == curves.seed.nunique()].dropna()
    best = mean.nll_test.idxmin()
    last = mean.index.max()
    return dict(
        best_test_epoch=float(best),
        best_test=float(mean.nll_test[best]),
        oracle_at_best_test=float(mean.nll_oracle[best]),
        last_epoch=float(last),
        last_test=float(mean.nll_test[last]),
        last_oracle=float(mean.nll_oracle[last]),
    )


def _count(value: str) -> str:
    """A count as the report prints it: '10000' -> '10,000'; anything else as it is."""
    return f"{int(value):,}" if value.isdigit() else value


def _epochs(n: str) -> str:
    return "epoch" if n == "1" else f"{n} epochs"


def _interval(values: pd.Series) -> str:
    m, lo, hi = mean_ci(values.dropna().to_numpy())
    if values.dropna().size < 2:
        return f"{m:.3f} (n={values.dropna().size})"
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def pretrain_section(
    curves: pd.DataFrame, params: dict[str, str], oracle_kind: str, curve_samples: str
) -> list[str]:
    """The report's 'MLE pre-training' section (Markdown lines): the recipe, the kept
    generator's NLLs over seeds with their 95% interval, the paper's MLE row on its own oracle,
    and what the curves say about over-fitting, in numbers measured from `curves`."""
    if curves.empty:
        return []
    kept = kept_points(curves)
    patience = int(params.get("pretrain.early_stop_patience", "0"))
    recipe = (
        f"{params.get('pretrain.epochs', '?')} epochs, lr {params.get('pretrain.lr', '?')}, "
        f"batch {params.get('pretrain.batch_size', '?')}, "
        f"{_count(params.get('bench.n_train', '?'))} training sequences, "
        + (
            "early stopping on a validation split of "
            f"{_count(params.get('pretrain.n_valid', '?'))} sequences "
            f"(patience {patience} evaluations, one every "
            f"{_epochs(params.get('pretrain.eval_every', '?'))})"
            if patience
            else "no early stopping (as the original code)"
        )
    )
    row = {
        "seeds": str(len(kept)),
        "kept epoch": ", ".join(f"{e:g}" for e in kept.kept_epoch),
        "NLL-oracle ↓": _interval(kept.nll_oracle),
        "NLL-test ↓": _interval(kept.nll_test),
    }
    if kept.nll_valid.notna().any():
        row["NLL-valid ↓"] = _interval(kept.nll_valid)
    if oracle_kind == "seqgan-paper":
        row["published NLL-oracle"] = (
            f"{NLL_ORACLE['mle'].nll_oracle:.3f} ({NLL_ORACLE['mle'].source}: "
            f"{NLL_ORACLE['mle'].setting})"
        )
    table = pd.DataFrame([row], index=pd.Index(["pre-training (MLE)"], name="generator"))
    fit = overfit_summary(curves)
    lines = [
        "## MLE pre-training (every method's start)",
        "",
        f"Recipe: {recipe}. The NLLs are those of the generator it kept, measured on the "
        f"learning curve's {_count(curve_samples)} samples (not the final evaluation's), mean over "
        "seeds with its 95% Student-t interval.",
        "",
        table.to_markdown(),
        "",
        f"Mean over seeds, NLL-test is lowest at epoch {fit['best_test_epoch']:g} "
        f"({fit['best_test']:.3f}, NLL-oracle {fit['oracle_at_best_test']:.3f}); at epoch "
        f"{fit['last_epoch']:g} it is {fit['last_test']:.3f}, NLL-oracle "
        f"{fit['last_oracle']:.3f}.",
    ]
    if fit["last_test"] > fit["best_test"] and fit["last_oracle"] < fit["oracle_at_best_test"]:
        lines += [
            "At the last epoch NLL-oracle is lower and NLL-test higher than at NLL-test's best "
            "epoch: the generator over-fits its training sequences, and a lower NLL-oracle "
            "alone does not mean a better model of the oracle."
        ]
    lines += ["", "![MLE pre-training curves](pretrain_curve.png)", ""]
    return lines
