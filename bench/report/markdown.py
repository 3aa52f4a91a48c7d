"""The report's README.md: its Markdown, from the table, the budgets and the run's tags."""

from __future__ import annotations

import pandas as pd

from bench.report.published import NLL_ORACLE
from bench.report.table import PUBLISHED_COLUMN


def report_markdown(
    table: pd.DataFrame,
    budgets: pd.DataFrame,
    tags: dict,
    params: dict,
    oracle_kind: str,
    pretrain: list[str],
) -> str:
    lines = [
        f"# seqgan-bench report: experiment run `{tags.get('mlflow.runName', '?')}`",
        "",
        f"Command: `{tags.get('command', '?')}`  ",
        f"Git commit: `{tags.get('git_commit', '?')}` · device: {tags.get('device', '?')} · "
        f"torch {tags.get('torch_version', '?')} · python {tags.get('python_version', '?')} · "
        f"preset `{params.get('preset', '?')}` · oracle `{tags.get('oracle', '?')}`",
        "",
        "Each cell: mean over seeds with its 95% Student-t interval; `(n=1)` marks a "
        "single seed. NLLs are per token, in nats. Reference rows: the oracle's own samples "
        "(the floor), i.i.d. tokens from the oracle's unigram distribution, uniform tokens. "
        "P(beats MLE): the probability that a random seed of the method has a lower value than "
        "a random seed of MLE.",
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
    ]
    return "\n".join(lines)


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
