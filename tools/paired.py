"""One method against every other, seed by seed, from reports' results.csv files.

Each seed of every method starts from that seed's cached MLE pre-training, so a method's seed s
and another's seed s are a pair even when two experiments trained them, as long as both ran on
the same task with the same pre-training. This tool checks that as far as the files can: a cell
(method, seed) present in several files must hold the same values there (timings, perf/*,
aside), and several files must share at least one such cell, or it stops.

    python tools/paired.py --method cot A/results.csv B/results.csv

prints, per metric, `method` − each other method: paired seeds, mean difference and its 95%
Student-t interval (bench.report.stats.paired_differences).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from bench.report.stats import paired_differences

METRICS = ("final/nll_oracle", "final/nll_test", "sweep/oracle_at_mle_test", "sweep/best_sum")
KEY = ["kind", "method", "seed", "metric"]


def load(paths: list[str]) -> pd.DataFrame:
    """The files' rows, one per (kind, method, seed, metric); ValueError if two files disagree
    on a cell they share, or share none (nothing shows that they pair)."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        frames.append(frame[frame.status == "finished"].drop_duplicates(KEY))
    cells = [set(zip(f.method, f.seed, strict=True)) for f in frames]
    if len(frames) > 1 and not set.intersection(*cells):
        raise ValueError(
            "the files share no (method, seed) cell, so nothing shows that their seeds pair "
            "(the same task and pre-trainings); include a method both ran, e.g. mle"
        )
    rows = pd.concat(frames, ignore_index=True)
    results = rows[~rows.metric.str.startswith("perf/")]  # timings differ run to run
    spread = results.groupby(KEY).value.agg(["min", "max"])
    differ = spread[(spread["max"] - spread["min"]).abs() > 1e-9]
    if not differ.empty:
        kind, method, seed, metric = differ.index[0]
        raise ValueError(
            f"{method} seed {seed} {metric} differs between the files "
            f"({float(differ['min'].iloc[0])!r} vs {float(differ['max'].iloc[0])!r}): not the "
            "same task or "
            "pre-training, so its seeds do not pair"
        )
    return rows.drop_duplicates(KEY)


def table(rows: pd.DataFrame, method: str, metrics: list[str]) -> str:
    """Markdown rows: `method` − each other method, per metric."""
    lines = [f"`{method}` − other, per paired seed: mean [95% Student-t interval] (seeds)", ""]
    lines += ["| metric | other | difference | seeds |", "|---|---|---|---|"]
    for metric in metrics:
        for r in paired_differences(rows, method, metric).itertuples():
            ci = f" [{r.lo:+.3f}, {r.hi:+.3f}]" if r.n > 1 else ""
            lines.append(f"| {metric} | {r.baseline} | {r.mean:+.3f}{ci} | {r.n} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; 0, or 2 with one line on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True, help="the method compared with every other")
    parser.add_argument(
        "--metrics",
        default=",".join(METRICS),
        help=f"comma list of results.csv metrics (default {','.join(METRICS)})",
    )
    parser.add_argument("files", nargs="+", help="results.csv files of reports")
    args = parser.parse_args(argv)
    try:
        rows = load(args.files)
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as e:
        print(f"paired: error: {e}", file=sys.stderr)
        return 2
    methods = set(rows[rows.kind == "method"].method)
    if args.method not in methods:
        valid = ", ".join(sorted(methods))
        print(
            f"paired: error: no method {args.method!r} in the files; valid: {valid}",
            file=sys.stderr,
        )
        return 2
    metrics = args.metrics.split(",")
    unknown = [m for m in metrics if m not in set(rows.metric)]
    if unknown:
        print(f"paired: error: no metric {unknown[0]!r} in the files", file=sys.stderr)
        return 2
    print(table(rows, args.method, metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
