"""Quote a report's generated verdicts in a Markdown file, between markers, regenerated.

The README's results are the reports' verdicts, copied by this tool and never retyped: each
block between `<!-- verdicts: DIR -->` and `<!-- /verdicts -->` is rewritten from
DIR/verdicts.csv (DIR relative to the repository root), and `--check` fails where a block
differs from what the CSV gives (tests/test_quote_verdicts.py runs it on the README).

    python -m tools.quote_verdicts README.md reports/paper-oracle/README.md
    python -m tools.quote_verdicts --check README.md
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pandas as pd

from bench.report.verdicts import CONTRASTS, LABELS, VERDICT_WORDS

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- verdicts: (\S+) -->\n)(.*?)(<!-- /verdicts -->)", re.S)


def _row(r) -> str:
    ci = "" if pd.isna(r.lo) else f" [{r.lo:+.3f}, {r.hi:+.3f}]"
    needed = ""
    if r.verdict == "inconclusive":
        needed = " (> 10,000 seeds)" if pd.isna(r.seeds_needed) else f" (≈{r.seeds_needed} seeds)"
    paired = "" if r.paired else ", unpaired"
    return (
        f"- {r.method} − {r.baseline}, {LABELS.get(r.metric, r.metric)}: "
        f"{r.effect:+.3f}{ci} (n = {r.n}{paired}): **{r.verdict}**{needed}"
    )


def quote(report_dir: str, where: Path) -> str:
    """The Markdown block for the report in `report_dir` (relative to the repository root),
    its link relative to the folder `where` of the file that quotes it."""
    frame = pd.read_csv(ROOT / report_dir / "verdicts.csv")
    link = os.path.relpath(ROOT / report_dir / "verdicts.csv", where.resolve())
    frame["seeds_needed"] = frame.seeds_needed.astype("Int64")
    n_seeds = int(frame.n.max()) if len(frame) else 0
    lines = [
        f"Generated from [{report_dir}/verdicts.csv]({link}) by "
        f"`tools/quote_verdicts.py`: {len(frame)} comparisons ({int(frame.paired.sum())} "
        f"paired), up to {n_seeds} seeds, "
        "Holm-corrected over all of them; effects are method − baseline in nats per token, "
        "lower is better; budgets in the report.",
        "",
        "| question | " + " | ".join(VERDICT_WORDS) + " |",
        "|---|" + "---:|" * len(VERDICT_WORDS),
    ]
    for question, part in frame.groupby("question", sort=False):
        counts = part.verdict.value_counts()
        lines.append(
            f"| {question} | " + " | ".join(str(counts.get(w, 0)) for w in VERDICT_WORDS) + " |"
        )
    lines.append("")
    decided = frame[frame.verdict != "inconclusive"]
    # the declared contrasts row by row, whatever their verdict; the rest by counts and decisions
    contrasts = frame[frame.question.isin({c.question for c in CONTRASTS})]
    rows = pd.concat([decided, contrasts]).drop_duplicates()
    if len(decided):
        lines += ["Every comparison not inconclusive, and the controls' rows:", ""]
    else:
        lines += ["No comparison is decided at this many seeds; the controls' rows:", ""]
    lines += [_row(r) for r in rows.itertuples()]
    return "\n".join(lines) + "\n"


def rewrite(text: str, where: Path) -> str:
    """`text` with every block requoted; `where`: the folder of the file it is from."""
    return BLOCK.sub(lambda m: m.group(1) + quote(m.group(2), where) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.quote_verdicts", description=__doc__.splitlines()[0]
    )
    parser.add_argument("files", type=Path, nargs="+", help="Markdown files with blocks")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 where a block is stale"
    )
    args = parser.parse_args(argv)
    stale = []
    for path in args.files:
        try:
            text = path.read_text()
            new = rewrite(text, path.parent)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 2
        if new != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"stale verdict blocks in {', '.join(stale)}: run python -m tools.quote_verdicts")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
