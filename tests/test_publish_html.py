"""What MLflow shows of an invocation: report.html (self-contained, plots embedded) on the parent
run, the cost per method among its metrics, and curve plots scaled to the methods' range."""

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from bench.report.html_page import data_uri, report_html
from bench.report.markdown import VIEWER_NOTE
from bench.report.plots import plot_curves, plot_quality_diversity, split_references, value_range
from bench.report.publish import parent_metrics, publish_report
from bench.report.stats import mean_ci
from bench.report.write import REPORT_FILES, write_report
from bench.store.tracker import Tracker

PNG = b"\x89PNG\r\n\x1a\n"


def _links(page: str) -> list[tuple[str, str]]:
    """Every src and href attribute of the page's elements (not text that looks like one): a
    self-contained page has only data: images and web or in-page links."""
    found = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend((k, v or "") for k, v in attrs if k in ("src", "href"))

    Links().feed(page)
    return found


def _cells(page: str) -> list[str]:
    """The text of every table cell of the page."""
    return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page)


def _embedded(page: str) -> list[bytes]:
    """The bytes of every data: image of `page`, in order."""
    return [
        base64.b64decode(uri.removeprefix("data:image/png;base64,"))
        for attr, uri in _links(page)
        if attr == "src"
    ]


def test_a_page_embeds_its_images_and_keeps_no_link_to_a_file():
    markdown = "\n".join(
        [
            "# report",
            "",
            "| method | NLL |",
            "|---|---|",
            "| mle | 9.123 |",
            "",
            "![curve](a.png)",
            "![never written](b.png)",
            "",
            "see [the table](table.csv), [MLflow](https://mlflow.org) and [below](#results)",
            "<script src='x.js'></script>",
        ]
    )
    page = report_html(markdown, {"a.png": PNG + b"one", "c.png": PNG + b"unused"}, "r <1>")
    assert page.startswith("<!DOCTYPE html>") and "<title>r &lt;1&gt;</title>" in page
    assert _cells(page) == ["method", "NLL", "mle", "9.123"]  # the table, as a table
    assert _embedded(page) == [PNG + b"one"]  # a.png's very bytes; c.png is not linked
    assert data_uri(PNG) == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "[plot not written: never written (b.png)]" in page  # named, not a broken image
    assert '<span title="table.csv">the table</span>' in page  # a sibling file: text only
    assert sorted(_links(page)) == [
        ("href", "#results"),
        ("href", "https://mlflow.org"),
        ("src", data_uri(PNG + b"one")),
    ]
    assert "<script" not in page  # raw HTML in the Markdown is escaped, not run


def _store(mlflow_uri: str) -> tuple[Tracker, str]:
    """A parent with mle and seqgan on seeds 0..2 (final NLLs, learning curves, timings) and an
    oracle reference row far below them."""
    tracker = Tracker(mlflow_uri, "html")
    parent = tracker.start("bench", {"kind": "parent"})
    ref = tracker.start("oracle", dict(kind="reference", method="oracle", seed="0"), parent)
    tracker.log_metrics(ref, 0, {"final/nll_oracle": 5.8, "final/nll_test": 5.8})
    tracker.set_tags(ref, {"cell_status": "finished"})
    tracker.end(ref)
    for method, shift, update_ms, rollout_ms in (
        ("mle", 0.0, (2.0, 4.0, 6.0), None),
        ("seqgan", 0.3, (100.0, 110.0, 150.0), (40.0, 50.0, 90.0)),
    ):
        for seed in (0, 1, 2):
            tags = dict(kind="method", method=method, seed=str(seed), cell_status="finished")
            run = tracker.start(f"{method}-s{seed}", tags, parent)
            for step, start in ((0, 9.4), (10, 9.2)):
                curve = {"learning_curve/nll_oracle": start + shift + 0.01 * seed}
                tracker.log_metrics(run, step, curve | {"learning_curve/nll_test": 8.0})
            final = 9.2 + shift + 0.01 * seed + (0.02 if seed == 1 and shift else 0.0)
            metrics = {"final/nll_oracle": final, "final/nll_test": 8.0 + 0.01 * seed}
            metrics["perf/update_ms_mean"] = update_ms[seed]
            if rollout_ms is not None:
                metrics["perf/rollout_ms_mean"] = rollout_ms[seed]
            tracker.log_metrics(run, 10, metrics)
            tracker.end(run)
    return tracker, parent


def test_the_parent_run_carries_report_html_the_plots_and_the_cost_per_method(mlflow_uri, tmp_path):
    tracker, parent = _store(mlflow_uri)
    out = tmp_path / "out"
    report = write_report(tracker, parent, out)
    publish_report(tracker, parent, out, report)
    client = tracker.client

    listed = {f.path: f.file_size for f in client.list_artifacts(parent)}
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "nll_oracle_curve.png" in pngs and "report.html" in REPORT_FILES
    for name in ["report.html", "README.md", *pngs]:  # the plots are image artifacts too
        assert listed[name] == (out / name).stat().st_size, name
    local = client.download_artifacts(parent, "report.html", str(tmp_path / "down"))
    page = open(local, encoding="utf-8").read()

    # self-contained: no src or href to a file; every plot README.md shows, embedded whole
    assert all(v.startswith(("data:image/png;base64,", "http", "#")) for _, v in _links(page))
    readme = (out / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert shown and set(shown) <= set(pngs)
    assert _embedded(page) == [(out / name).read_bytes() for name in shown]
    assert all(b.startswith(PNG) for b in _embedded(page))

    # the comparison table and the verdicts, with their values
    cells = _cells(page)
    assert {"oracle", "mle", "seqgan", "NLL-oracle ↓", "ms / G update"} <= set(cells)
    nll = report.table.loc["seqgan", "NLL-oracle ↓"]
    assert nll.startswith("9.5") and nll in cells
    assert report.table.loc["seqgan", "ms / G update"] == "120.0 [54.3, 185.7]"
    assert "120.0 [54.3, 185.7]" in cells
    assert "<h2>Verdicts</h2>" in page
    seqgan = report.verdicts[report.verdicts.method == "seqgan"]
    assert not seqgan.empty
    for r in seqgan.itertuples():  # each paired difference, e.g. +0.300 on NLL-oracle
        assert f"{r.effect:+.3f}" in page
    oracle_gap = seqgan[seqgan.metric == "final/nll_oracle"].effect.iloc[0]
    assert oracle_gap == pytest.approx(0.3 + 0.02 / 3)
    assert f"{oracle_gap:+.3f} [" in page and "<strong>worse</strong>" in page
    # MLflow's Markdown viewer cannot show README's plots: README says to open report.html
    assert VIEWER_NOTE[0] in readme and "Viewing this in MLflow" not in page

    # the cost on the parent, as <method>/update_ms_mean (and rollout_ms), with the interval
    metrics = client.get_run(parent).data.metrics
    for name, seeds in (
        ("seqgan/update_ms", [100.0, 110.0, 150.0]),
        ("seqgan/rollout_ms", [40.0, 50.0, 90.0]),
        ("mle/update_ms", [2.0, 4.0, 6.0]),
    ):
        m, lo, hi = mean_ci(np.array(seeds))
        got = [metrics[f"{name}_{stat}"] for stat in ("mean", "lo", "hi")]
        assert got == pytest.approx([m, lo, hi], rel=1e-12), name
    assert metrics["seqgan/update_ms_mean"] == pytest.approx(120.0)
    assert "mle/rollout_ms_mean" not in metrics  # MLE rolls nothing out
    assert "oracle/update_ms_mean" not in metrics  # a reference row trains nothing

    # the run page: the headline columns (the cost among them) and the main plots as images
    # from the server's get-artifact endpoint, relative to the UI's address
    description = client.get_run(parent).data.tags["mlflow.note.content"]
    assert "**`report.html`**" in description
    header = next(line for line in description.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "method",
        "seeds",
        "NLL-oracle ↓",
        "NLL-test ↓",
        "reverse KL ↓",
        "forward KL ↓",
        "BLEU-4 ↑",
        "Self-BLEU-4 ↓",
        "ms / G update",
        "rollout ms / batch",
        "P(beats MLE) NLL-oracle",
    ]  # the terminal's columns (no published column off the paper's oracle)
    row = next(line for line in description.splitlines() if line.startswith("| seqgan"))
    assert "120.0 [54.3, 185.7]" in row and "60.0 [" in row
    images = re.findall(r"!\[([^\]]*)\]\(([^)]*)\)", description)
    assert images == [
        (name, f"get-artifact?path={name}&run_uuid={parent}")
        for name in ("nll_oracle_curve.png", "quality_diversity.png")  # no frontier here
    ]


def test_parent_metrics_carry_the_cost_per_method():
    numbers = pd.DataFrame(
        [
            ("seqgan", "perf/update_ms_mean", 120.0, 80.0, 160.0, 3),
            ("seqgan", "perf/rollout_ms_mean", 60.0, np.nan, np.nan, 1),
            ("seqgan", "perf/setup_s", 3.0, 2.0, 4.0, 3),  # not a parent metric
        ],
        columns=["method", "metric", "mean", "lower", "upper", "n"],
    )
    assert parent_metrics(numbers) == {
        "seqgan/update_ms_mean": 120.0,
        "seqgan/update_ms_lo": 80.0,
        "seqgan/update_ms_hi": 160.0,
        "seqgan/rollout_ms_mean": 60.0,
    }


def _refs(**values: float) -> pd.DataFrame:
    rows = [("reference", m, 0, "finished", "final/nll_oracle", v) for m, v in values.items()]
    frame = pd.DataFrame(rows, columns=["kind", "method", "seed", "status", "metric", "value"])
    return frame.assign(run_id=frame.method)


def test_the_curve_plot_spans_the_methods_not_a_far_reference_row(tmp_path):
    # the methods between 9.0 and 9.3; the oracle (5.8) and unigram (10.3) rows far outside
    curve = pd.DataFrame(
        [("mle", s, step, 9.3 - 0.01 * step + 0.02 * s) for s in (0, 1) for step in (0, 10)]
        + [("seqgan", s, step, 9.2 - 0.01 * step) for s in (0, 1) for step in (0, 10, 20)],
        columns=["method", "seed", "step", "value"],
    )
    assert (curve.value.min(), curve.value.max()) == pytest.approx((9.0, 9.32))
    tidy = _refs(oracle=5.8, unigram=10.3, near=9.1, uniform=10.8)
    lo, hi = plot_curves(curve, tidy, tmp_path / "c.png", "NLL-oracle", "final/nll_oracle")
    assert (lo, hi) == pytest.approx((9.0 - 0.016, 9.32 + 0.016))  # 5% of the 0.32 span
    assert lo < 9.0 and hi > 9.32  # every seed's value (the band) is on the axis
    assert lo > 5.8 and hi < 10.3  # the far reference rows are not
    assert (hi - lo) / (10.3 - 5.8) < 0.1  # the methods' 0.3 nats fill the axis, not 7% of it
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)


def test_reference_rows_are_drawn_inside_the_range_and_named_at_its_edges():
    span = value_range(pd.Series([9.0, 9.2, np.inf, np.nan, 9.1]))
    assert span == pytest.approx((8.99, 9.21))  # non-finite values (a diverged seed) ignored
    assert value_range([7.0, 7.0]) == pytest.approx((6.95, 7.05))
    assert value_range([np.nan]) is None and value_range([]) is None
    refs = {"oracle": 5.8, "near": 9.1, "unigram": 10.3}
    assert split_references(refs, span) == ({"near": 9.1}, {"oracle": 5.8}, {"unigram": 10.3})
    assert split_references(refs, None) == (refs, {}, {})


def test_the_sweep_plot_spans_the_sweeps_and_names_a_far_reference_in_a_corner(tmp_path):
    sweep = pd.DataFrame(
        [
            (m, 0, a, 9.0 + a + d, 9.0 - a / 2 + d)
            for m, d in (("mle", 0), ("gan", 0.5))
            for a in (0, 1)
        ],
        columns=["method", "seed", "alpha", "nll_oracle", "nll_test"],
    )  # NLL-oracle 9.0..10.5, NLL-test 8.5..9.5
    tidy = pd.concat(
        [
            _refs(oracle=5.8, unigram=10.2, uniform=11.0),
            _refs(oracle=5.9, unigram=9.0, uniform=11.0).assign(metric="final/nll_test"),
        ]
    )
    xlim, ylim = plot_quality_diversity(sweep, tidy, tmp_path / "qd.png")
    assert xlim == pytest.approx((9.0 - 0.075, 10.5 + 0.075))
    assert ylim == pytest.approx((8.5 - 0.05, 9.5 + 0.05))  # unigram's (10.2, 9.0) is on it
    assert not xlim[0] <= 5.8 <= xlim[1]  # the oracle's star is not; it is named instead
