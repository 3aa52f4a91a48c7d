"""The report's budget table: what each method's cells spent, against its paper preset.

Every cell logs `resources/*` (its config's `methods.base.Budget`; a namespace that sorts after
`final/*`) and `resources/paper_*` (the same method's `paper` preset on the same task); this
module only divides them, so a reader never takes a 40-update number for the paper's 200.
"""

from __future__ import annotations

import pandas as pd

# Budget field -> column header
HEADERS = {
    "generator_updates": "generator updates",
    "adversary_updates": "D / critic / mediator updates per G update",
    "adversary_parameters": "D / critic / mediator parameters",
}


def budget_table(tidy: pd.DataFrame, made: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method with budget metrics: 'value (fraction of paper)' per HEADERS column,
    e.g. '40 (0.2 × paper)'; a method without an adversary shows '—' there. `tidy` is
    `bench.report.load.tidy_results`'s frame; the values are the same for every seed of a method
    (its config), so the first is taken. `made` (`bench.report.load.updates_made`): where a
    method's cells made fewer generator updates than their config's (early stopping), the
    config's count is a cap, and the cell says so with the range made."""
    rows = tidy[(tidy.kind == "method") & tidy.metric.str.startswith("resources/")]
    if rows.empty:
        return pd.DataFrame(columns=list(HEADERS.values()))
    values = rows.pivot_table(index="method", columns="metric", values="value", aggfunc="first")
    out = {}
    for method, row in values.iterrows():
        out[method] = {
            header: _cell(row.get(f"resources/{key}"), row.get(f"resources/paper_{key}"))
            for key, header in HEADERS.items()
        }
    if made is not None:
        for method, part in made.groupby("method"):
            cap = (
                values.loc[method].get("resources/generator_updates")
                if method in values.index
                else None
            )
            if cap is not None and not pd.isna(cap) and part.updates.min() < cap:
                lo, hi = int(part.updates.min()), int(part.updates.max())
                span = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
                header = HEADERS["generator_updates"]
                out[method][header] = f"{span} made, of up to {out[method][header]}"
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = "method"
    return frame


def _cell(value, paper) -> str:
    if value is None or pd.isna(value):
        return "?"
    if value == 0 and (paper is None or paper == 0):
        return "—"
    text = f"{value:,.0f}"
    if paper is None or pd.isna(paper) or paper == 0:
        return text
    return f"{text} ({value / paper:.2g} × paper)"
