"""Plots of a finished experiment's frames, each written to one PNG.

Every function builds its own `matplotlib.figure.Figure` and saves it with `Figure.savefig`,
which renders through Agg without selecting a backend or touching pyplot's global figure state.
The frames are those of `bench.report.stats` (tidy results, sweep) and learning curves
(method, seed, step, value).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_quality_diversity(
    sweep: pd.DataFrame,
    tidy: pd.DataFrame,
    path: Path,
    published: tuple[str, tuple[tuple[float, float, float], ...]] | None = None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """NLL-test against NLL-oracle along each method's temperature sweep (mean over seeds).

    `sweep`: method, seed, alpha, nll_oracle, nll_test; `tidy`: tidy results, whose reference
    rows but "uniform" are drawn as stars where they fall in the sweeps' range (`value_range`
    of both axes), else named with their values in a corner. Both axes lower is better;
    alpha = 1 circled.
    `published`: (label, ((alpha, nll_oracle, nll_test), ...)) of a published sweep, drawn
    grey and dashed so it is not read as one of this run's methods. Returns the x- and
    y-limits drawn.
    """
    # imported here: matplotlib's import is slow, paid only by a process that plots
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    _sweep_lines(ax, sweep, "nll_oracle", "nll_test")
    if published is not None:
        label, points = published
        ax.plot([p[1] for p in points], [p[2] for p in points], "x--", color="grey", label=label)
    refs = tidy[tidy.kind == "reference"]
    refs = refs.pivot_table(index="method", columns="metric", values="value")
    means = sweep.groupby(["method", "alpha"])[["nll_oracle", "nll_test"]].mean()
    extra = list(published[1]) if published is not None else []
    xspan = value_range([*means.nll_oracle, *(p[1] for p in extra)])
    yspan = value_range([*means.nll_test, *(p[2] for p in extra)])
    off = []
    for method, row in refs.iterrows():
        if method == "uniform":
            continue
        x, y = row["final/nll_oracle"], row["final/nll_test"]
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        if _inside(x, xspan) and _inside(y, yspan):
            ax.plot(x, y, "k*")
            ax.annotate(method, (x, y), fontsize=8)
        else:  # a reference far from every sweep would squeeze the sweeps into a corner
            off.append(f"{method} ({x:.2f}, {y:.2f})")
    if xspan is not None and yspan is not None:
        ax.set_xlim(*xspan)
        ax.set_ylim(*yspan)
    xlabel = "NLL-oracle (quality) ↓"
    if off:  # under the axis label: a note inside the axes would hide the sweeps' ends
        xlabel += "\n★ off the axes (NLL-oracle, NLL-test): " + ", ".join(off)
    labels = (xlabel, "NLL-test (coverage) ↓")
    _save(fig, ax, *labels, "temperature sweep: lower-left is better; circle = α 1", path)
    return ax.get_xlim(), ax.get_ylim()


def _sweep_lines(ax, sweep: pd.DataFrame, x: str, y: str, dashed: tuple[str, ...] = ()) -> None:
    """One line per method through its sweep's per-alpha means of `x` and `y`, alpha = 1
    circled; the methods in `dashed` dashed."""
    from matplotlib import colormaps

    colors = colormaps["tab20"]  # 20 distinct colours: the default cycle repeats after 10
    for i, (method, part) in enumerate(sweep.groupby("method")):
        mean = part.groupby("alpha")[[x, y]].mean()
        style = "--" if method in dashed else "-"
        (line,) = ax.plot(
            mean[x], mean[y], style, marker=".", label=method, color=colors(2 * i % 20 + i // 10)
        )
        if 1.0 in mean.index:
            ax.plot(
                mean.loc[1.0, x], mean.loc[1.0, y], "o", ms=9, mfc="none", color=line.get_color()
            )


def _legend(ax) -> None:
    """A legend when the axes hold a labelled line (an empty plot has none: no warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _save(fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_frontier(sweep: pd.DataFrame, path: Path, baselines: tuple[str, ...] = ()) -> bool:
    """Reverse KL(G‖P) against forward KL(P‖G) along each method's temperature sweep (mean
    over seeds per alpha), nats per token; both lower is better, (0, 0) is the oracle.
    `baselines` are drawn dashed; a curve below theirs is below MLE's mean curve, and the
    frontier verdicts say whether that is decided.
    False (and no file) when no run logged the divergences."""
    from matplotlib.figure import Figure

    data = sweep.dropna(subset=["forward_kl", "reverse_kl"]) if "reverse_kl" in sweep else sweep[:0]
    if data.empty:
        return False
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    _sweep_lines(ax, data, "forward_kl", "reverse_kl", dashed=baselines)
    labels = ("forward KL(P‖G), nats/token (coverage) ↓", "reverse KL(G‖P), nats/token (quality) ↓")
    _save(fig, ax, *labels, "divergence frontier over α: lower-left is better; circle = α 1", path)
    return True


def value_range(values, pad: float = 0.05) -> tuple[float, float] | None:
    """The axis range of the methods' `values` (every seed's, so min..max bands fit; NaN and
    infinities left out): their min..max widened by `pad` of the span on each side (by `pad`
    itself for a single value). None when no value is finite."""
    values = np.asarray(list(values), dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    margin = pad * (hi - lo) if hi > lo else pad
    return lo - margin, hi + margin


def _inside(value: float, span: tuple[float, float] | None) -> bool:
    return span is None or span[0] <= value <= span[1]


def split_references(
    refs: dict[str, float], span: tuple[float, float] | None
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """The reference rows (name -> value) inside `span` (drawn as lines), below it and above
    it (named off the axis, so they do not stretch it); all inside when `span` is
    None."""
    if span is None:
        return dict(refs), {}, {}
    lo, hi = span
    inside = {m: v for m, v in refs.items() if _inside(v, span)}
    below = {m: v for m, v in refs.items() if v < lo}
    above = {m: v for m, v in refs.items() if v > hi}
    return inside, below, above


def plot_curves(
    curve: pd.DataFrame,
    tidy: pd.DataFrame,
    path: Path,
    ylabel: str,
    ref_metric: str,
    xlabel: str = "generator updates (MLE pre-training, then each method)",
) -> tuple[float, float]:
    """Mean over seeds (line) and min..max band, one line per method; reference rows dashed.

    `curve`: method, seed, step, value (step is the x-axis); `tidy`: tidy results, whose
    reference rows' mean `ref_metric` (but "uniform"'s) are drawn as horizontal lines when
    they fall in the methods' range (`value_range`), else named with their value above the
    axes (▼ below the range, ▲ above it): the y-axis spans the methods, so differences
    between them are not squeezed into a band by a reference far away. Returns the y-limits.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for method, part in curve.groupby("method"):
        g = part.groupby("step").value
        mean = g.mean()
        (line,) = ax.plot(mean.index, mean.to_numpy(), label=method)
        if part.seed.nunique() > 1:
            ax.fill_between(
                mean.index,
                g.min().to_numpy(),
                g.max().to_numpy(),
                alpha=0.2,
                color=line.get_color(),
            )
    refs = tidy[(tidy.kind == "reference") & (tidy.metric == ref_metric)]
    means = refs.groupby("method").value.mean().drop("uniform", errors="ignore").to_dict()
    span = value_range(curve.value)
    inside, below, above = split_references(means, span)
    for method, value in inside.items():
        ax.axhline(value, ls="--", lw=1, color="grey")
        ax.annotate(f"{method} {value:.2f}", (0, value), fontsize=8, va="bottom")
    if span is not None:
        ax.set_ylim(*span)
    if below or above:  # above the axes: a note inside them would hide the curves' ends
        notes = [f"▼ {m} {v:.2f}" for m, v in sorted(below.items(), key=_by_value)]
        notes += [f"▲ {m} {v:.2f}" for m, v in sorted(above.items(), key=_by_value)]
        ax.set_title("off the axis: " + ", ".join(notes), loc="right", fontsize=8, color="dimgrey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return ax.get_ylim()


def _by_value(item: tuple[str, float]) -> float:
    return item[1]


def plot_pretrain_curves(curves: pd.DataFrame, path: Path, published: float | None = None) -> None:
    """The MLE pre-training's curves against epochs: NLL-oracle (left), NLL-test and, where
    early stopping measured it, NLL-valid (right); mean over the seeds evaluated at each epoch,
    band min..max, early stopping's kept epochs as dotted verticals. All lower is better.

    `curves`: seed, epoch, metric, value (`bench.report.pretrain.pretrain_curves`); `published`:
    a published NLL-oracle of the same recipe, drawn as a grey dashed line on the left.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    panels = ((left, ("nll_oracle",)), (right, ("nll_test", "nll_valid")))
    labels = {"nll_oracle": "NLL-oracle", "nll_test": "NLL-test", "nll_valid": "NLL-valid"}
    for ax, metrics in panels:
        for metric in metrics:
            part = curves[curves.metric == metric]
            if part.empty:
                continue
            g = part.groupby("epoch").value
            mean = g.mean()
            (line,) = ax.plot(mean.index, mean.to_numpy(), label=labels[metric])
            if part.seed.nunique() > 1:
                lo, hi = g.min().to_numpy(), g.max().to_numpy()
                ax.fill_between(mean.index, lo, hi, alpha=0.2, color=line.get_color())
        for epoch in curves[curves.metric == "best_step"].epoch:
            ax.axvline(epoch, ls=":", lw=1, color="grey")
        ax.set_xlabel("pre-training epoch")
        ax.set_ylabel("per-token NLL ↓")
        ax.grid(alpha=0.3)
    if published is not None:
        left.axhline(published, ls="--", lw=1, color="grey", label=f"published {published:.3f}")
    for ax in (left, right):
        ax.legend(fontsize=8)
    left.set_title("quality: NLL-oracle of samples")
    right.set_title("coverage: NLL of held-out data")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
