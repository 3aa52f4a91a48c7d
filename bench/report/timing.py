"""The report's "where the time goes" table: each method's cell time split into its parts.

Every cell logs `perf/<part>_s` for the parts of `bench.train.stopwatch.PARTS` and `perf/cell_s`
(the whole cell); this module only averages them over seeds. Cells trained before the breakdown
was logged have no `perf/cell_s` and are left out.
"""

from __future__ import annotations

import pandas as pd

from bench.train.stopwatch import PARTS

# the Markdown table's columns: header -> the parts it sums (timing.csv keeps every part)
COLUMNS = {
    "setup": ("pretrain_load", "setup"),
    "training": ("train",),
    "curve points": ("curve_eval",),
    "final metrics": ("final_sample", "final_score", "final_bleu", "final_self_bleu"),
    "sweep": ("sweep",),
    "checkpoints": ("checkpoint",),
    "MLflow": ("tracking",),
}


def time_parts(tidy: pd.DataFrame) -> pd.DataFrame:
    """Seconds per cell, mean over seeds: one row per method with a breakdown, columns `cell`
    (the whole cell), every part of PARTS (0 where a cell never entered it) and `other` (cell
    minus the parts: progress output, locks, what no part names). `tidy`:
    `bench.report.load.tidy_results`'s frame. Lower is faster; `seeds` counts the cells."""
    rows = tidy[(tidy.kind == "method") & tidy.metric.str.startswith("perf/")]
    wide = rows.pivot_table(index=["method", "seed"], columns="metric", values="value")
    if "perf/cell_s" not in wide:
        return pd.DataFrame(columns=["seeds", "cell", *PARTS, "other"])
    wide = wide[wide["perf/cell_s"].notna()]
    out = pd.DataFrame(index=wide.index)
    out["cell"] = wide["perf/cell_s"]
    for part in PARTS:
        key = f"perf/{part}_s"
        out[part] = wide[key].fillna(0.0) if key in wide else 0.0
    out["other"] = out["cell"] - out[list(PARTS)].sum(axis=1)
    means = out.groupby(level="method").mean()
    means.insert(0, "seeds", out.groupby(level="method").size())
    return means


def time_table(parts: pd.DataFrame) -> pd.DataFrame:
    """The Markdown view of `time_parts`: cell seconds, then per COLUMNS group 'seconds (share
    of the cell)', e.g. '12.3 (41%)'; rows sorted by cell time, longest first."""
    frame = pd.DataFrame(index=parts.index)
    frame["seeds"] = parts["seeds"].astype(int)
    frame["cell s"] = parts["cell"].map(lambda s: f"{s:,.1f}")
    for header, names in {**COLUMNS, "other": ("other",)}.items():
        seconds = parts[list(names)].sum(axis=1)
        frame[header] = [_share(s, c) for s, c in zip(seconds, parts["cell"], strict=True)]
    order = parts["cell"].sort_values(ascending=False).index
    return frame.loc[order]


def _share(seconds: float, cell: float) -> str:
    return f"{seconds:,.1f} ({100 * seconds / cell:.0f}%)" if cell > 0 else f"{seconds:,.1f}"
