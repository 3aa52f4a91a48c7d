"""The report's README.md: its Markdown, from the table, the budgets and the run's tags."""

from __future__ import annotations

import pandas as pd

from bench.report.published import NLL_ORACLE
from bench.report.table import MIN_PROB_SEEDS, PUBLISHED_COLUMN
from bench.report.verdicts import LABELS, LEVEL, verdict_counts

# MLflow's Markdown viewer resolves `![...](plot.png)` against the UI's address, not the run's
# artifacts, so the plots of README.md do not show there; report.html embeds them
VIEWER_NOTE = [
    "**Viewing this in MLflow?** Its artifact viewer does not load this file's plots (they are "
    "links to the PNG files beside it). Open **`report.html`** among this run's artifacts "
    "instead: the same report with the plots embedded.",
    "",
]


def report_markdown(
    table: pd.DataFrame,
    budgets: pd.DataFrame,
    timing: pd.DataFrame,
    tags: dict,
    params: dict,
    oracle_kind: str,
    pretrain: list[str],
    verdicts: list[str],
    frontier: bool,
    runs: list[str],
    viewer_note: bool = True,
) -> str:
    """README.md's text; `viewer_note`: with the line that sends a reader in MLflow's artifact
    viewer (where this file's relative image links do not load) to `report.html`."""
    lines = [
        f"# seqgan-bench report: experiment run `{tags.get('mlflow.runName', '?')}`",
        "",
        f"Command: `{tags.get('command', '?')}`  ",
        f"Git commit: `{tags.get('git_commit', '?')}` · device: {tags.get('device', '?')} · "
        f"torch {tags.get('torch_version', '?')} · python {tags.get('python_version', '?')} · "
        f"preset `{params.get('preset', '?')}` · oracle `{tags.get('oracle', '?')}` · "
        f"task data `{tags.get('task_data', '?')}`",
        "",
        *(VIEWER_NOTE if viewer_note else []),
        *verdicts,
        "## Results",
        "",
        "Each cell: mean over seeds with its 95% Student-t interval; `(n=1)` marks a "
        "single seed. NLLs are per token, in nats. Reference rows: the oracle's own samples, "
        "i.i.d. tokens from the oracle's unigram distribution, uniform tokens. The oracle's "
        "NLL-oracle is its entropy rate, not a floor: a generator cooled far enough scores "
        "below it. reverse KL(G‖P) = NLL-oracle − H(G) and forward KL(P‖G) = NLL-test − the "
        "oracle's NLL-test are unbiased Monte Carlo estimates from exact log-likelihoods (nats "
        "per token), 0 only for the oracle; Jeffreys is their sum; JSD is the sequence-level "
        "Jensen–Shannon divergence "
        "(≤ ln 2 = 0.693, which it reaches whenever the two densities barely overlap). "
        "P(beats MLE): the probability that a random seed of the method has a lower value than "
        "a random seed of MLE (unpaired; the verdicts above are paired), shown when both have "
        f"at least {MIN_PROB_SEEDS} seeds. —: not measured for that method (no learned "
        "discriminator: no D accuracy; no rollout: no rollout cost; a reference row makes no "
        "updates), no finished seed, or too few seeds for P(beats MLE).",
        "",
        table.to_markdown(),
        "",
        *(_published_notes(table) if oracle_kind == "seqgan-paper" else []),
        "## Budgets",
        "",
        "What each method's cells spent after the shared pre-training, and its fraction of the "
        "same method's `paper` preset (the published schedule) on this task. A number made "
        "with a fraction of the paper's updates or discriminator is not the paper's number.",
        "",
        budgets.to_markdown() if not budgets.empty else "(no budget metrics in this store)",
        "",
        *_timing_section(timing),
        *pretrain,
        "## Learning curves",
        "",
        "Mean over seeds, band min..max. Every method starts from the same cached MLE "
        "pre-training of its seed.",
        "",
        "![NLL-oracle learning curves](nll_oracle_curve.png)",
        "![NLL-test learning curves](nll_test_curve.png)",
        "![NLL-oracle against training seconds](nll_oracle_vs_seconds.png)",
        "",
        "## Quality against diversity (temperature sweep)",
        "",
        "Each generator sampled with its logits multiplied by α (α > 1 is colder). Caccia et al. "
        "(2020) showed that one α = 1 NLL-oracle number can be matched by cooling MLE: compare "
        "curves, not points.",
        "",
        "![quality-diversity](quality_diversity.png)",
        "",
        *(
            [
                "The same sweeps as exact divergences: a method whose curve runs below a "
                "baseline's (dashed) has less reverse KL at the same forward KL.",
                "",
                "![divergence frontier](frontier.png)",
                "",
            ]
            if frontier
            else []
        ),
        *runs,
    ]
    return "\n".join(lines)


def _timing_section(timing: pd.DataFrame) -> list[str]:
    """Where each method's cell time went (`bench.report.timing.time_table`); nothing for a
    store whose cells predate the breakdown."""
    if timing.empty:
        return []
    return [
        "## Where the time goes",
        "",
        "Seconds per cell, mean over its seeds, on the machine and with the threads that ran "
        "it, and each part's share. setup: loading the seed's pre-trained generator and "
        "building the trainer (a learned discriminator's pre-training included); training: "
        "the updates alone; curve points, final metrics and sweep: evaluation (samples, exact "
        "NLLs, BLEU, Self-BLEU; the temperature sweep); checkpoints: loading and saving the "
        "training state; MLflow: the run's params, metrics and artifacts; other: what no part "
        "names. timing.csv splits every part.",
        "",
        timing.to_markdown(),
        "",
    ]


def runs_section(tidy: pd.DataFrame) -> list[str]:
    """The '## Runs' section: each cell's MLflow run id, for `python -m bench.sample RUN_ID`."""
    cells = tidy[(tidy.kind == "method") & ~tidy.run_id.str.startswith("busy:")]
    cells = cells.drop_duplicates("run_id")[["method", "seed", "status", "run_id"]]
    if cells.empty:
        return []
    return [
        "## Runs",
        "",
        "Each cell's MLflow run: `python -m bench.sample RUN_ID` draws from its kept generator, "
        "`python -m bench.rescore` scores them all again.",
        "",
        cells.sort_values(["method", "seed"]).to_markdown(index=False),
        "",
    ]


def _published_notes(table: pd.DataFrame) -> list[str]:
    rows = [m for m in table.index if m in NLL_ORACLE]
    return [
        f"`{PUBLISHED_COLUMN}`: published values on this oracle, measured by others with their "
        "own budgets and, for some, other models (a value marked ? is remembered, not yet "
        "read from its source):",
        "",
        *(
            f"- {m}: {NLL_ORACLE[m].shown}, {NLL_ORACLE[m].source} ({NLL_ORACLE[m].setting})"
            for m in rows
        ),
        "",
    ]


def _cell(r) -> str:
    mark = "" if r.paired else " †"
    if pd.isna(r.lo):
        text = f"{r.effect:+.3f}"
    else:
        text = f"{r.effect:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
    word = f"**{r.verdict}**" if r.verdict != "inconclusive" else r.verdict
    needed = ""
    if r.verdict == "inconclusive":
        needed = " (> 10,000 seeds)" if pd.isna(r.seeds_needed) else f" (≈{r.seeds_needed} seeds)"
    return f"{text} {word}{needed}{mark}"


def verdict_section(
    frame: pd.DataFrame, margin: float, best_baseline: str | None, repeats: dict[str, str]
) -> list[str]:
    """The report's "Verdicts" section from `bench.report.verdicts.verdicts`' frame: how they
    are decided, the counts per question, one method × metric table per question."""
    lines = ["## Verdicts", ""]
    if frame.empty:
        return lines + [
            "No comparison has 2 or more seeds of both sides (or no MLE baseline ran): no "
            "verdicts. Run `--seeds 2` or more with `pretrained`, `mle-es` or `mle`.",
            "",
        ]
    paired = "" if frame.paired.all() else " † marks an unpaired comparison (Welch)."
    lines += [
        "Generated from this report's cells (`bench/report/verdicts.py`, also `verdicts.csv`), "
        "not written by hand. Each entry: the method's value minus the baseline's on one metric, "
        "seed by seed (seed s of every method starts from seed s's pre-training), mean and 95% "
        f"Student-t interval, nats per token, lower is better. The family is all {len(frame)} "
        f"comparisons of this report: a Holm-corrected two-sided paired t-test at {LEVEL} "
        "decides **better** or **worse**; failing that, two one-sided tests at "
        f"±{margin:g} nats, Holm-corrected, decide **equivalent**; otherwise inconclusive, with "
        "the paired seeds that would detect the observed effect at the observed spread "
        f"(power 0.8 at level {LEVEL}/{len(frame)}, the family's Bonferroni level).{paired}",
        "",
    ]
    for b, earlier in repeats.items():
        lines += [
            f"`{b}` equals `{earlier}` on every seed and metric here, so it asks no questions "
            "of its own (the family counts them once).",
            "",
        ]
    if best_baseline is not None:
        lines += [
            f"Matched diversity: at the α = 1 NLL-test (and forward KL) of `{best_baseline}`, "
            "the best-covering MLE baseline here; each side's value is read off its own "
            "temperature sweep.",
            "",
        ]
    counts = verdict_counts(frame)
    lines += [counts.to_markdown(), ""]
    for question, part in frame.groupby("question", sort=False):
        cells = part.assign(
            cell=[_cell(r) for r in part.itertuples()],
            pair=[f"{r.method} − {r.baseline}" for r in part.itertuples()],
        )
        grid = cells.pivot_table(index="pair", columns="metric", values="cell", aggfunc="first")
        grid.index.name = None
        grid = grid[[m for m in LABELS if m in grid.columns] + sorted(set(grid) - set(LABELS))]
        grid.columns = [LABELS.get(c, c) for c in grid.columns]
        lines += [f"### {question}", "", grid.fillna("—").to_markdown(), ""]
    return lines
