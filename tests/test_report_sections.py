"""Report parts a reader asked for: P(beats MLE) only with enough seeds, and each cell's run id."""

import pandas as pd

from bench.report.markdown import runs_section
from bench.report.table import display_table


def _tidy(seeds: dict[str, int]) -> pd.DataFrame:
    rows = []
    for method, n in seeds.items():
        for s in range(n):
            for metric, value in (("final/nll_oracle", 9.0 - s), ("final/nll_test", 8.0 + s)):
                rows.append(
                    dict(kind="method", method=method, seed=s, status="finished")
                    | dict(run_id=f"{method}-{s}", metric=metric, value=value)
                )
    rows.append(
        dict(kind="method", method="rloo", seed=0, status="running elsewhere")
        | dict(run_id="busy:rloo/0", metric="", value=float("nan"))
    )
    return pd.DataFrame(rows)


def test_p_beats_mle_is_shown_only_with_three_seeds_on_both_sides():
    table = display_table(_tidy({"mle": 3, "seqgan": 3, "cot": 1}))
    column = "P(beats MLE) NLL-oracle"
    assert table.loc["seqgan", column] == "0.50"  # the same three values: ties count half
    assert table.loc["cot", column] == "—"  # one seed: only 0, 0.5 or 1 were possible
    few = display_table(_tidy({"mle": 2, "seqgan": 3}))
    assert few.loc["seqgan", column] == "—"


def test_the_runs_section_lists_every_cell_with_its_run_id_and_no_busy_placeholder():
    lines = runs_section(_tidy({"mle": 2, "seqgan": 1}))
    text = "\n".join(lines)
    assert lines[0] == "## Runs" and "python -m bench.sample RUN_ID" in text
    assert "| mle      |      0 | finished | mle-0    |" in text
    assert "seqgan-0" in text and "busy:" not in text
    assert runs_section(_tidy({})[:0]) == []
