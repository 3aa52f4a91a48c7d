"""tools/quote_verdicts.py: the README quotes the reports' generated verdicts, never retyped."""

import pandas as pd

from bench.report.verdicts import COLUMNS, CONTRASTS
from tests.conftest import ROOT
from tools.quote_verdicts import BLOCK, main, rewrite


def _verdicts(tmp_path):
    rows = [
        ["Does the method beat the MLE baseline `mle`?", "a", "mle", "final/nll_oracle", 3, True]
        + [-0.3, -0.4, -0.2, 0.001, 0.004, 0.9, "better", None],
        ["Does the method beat the MLE baseline `mle`?", "b", "mle", "final/nll_test", 3, True]
        + [0.1, -0.2, 0.4, 0.2, 1.0, 1.0, "inconclusive", 41],
        [CONTRASTS[0].question, "seqgan", "seqgan-const"]
        + ["final/reverse_kl", 3, True, 0.02, -0.3, 0.34, 0.7, 1.0, 1.0, "inconclusive", None],
    ]
    (tmp_path / "r").mkdir()
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "r" / "verdicts.csv", index=False)
    return str(tmp_path / "r")


def test_a_block_is_rewritten_with_counts_decided_rows_and_the_controls(tmp_path):
    report = _verdicts(tmp_path)
    text = f"intro\n<!-- verdicts: {report} -->\nstale text\n<!-- /verdicts -->\nend\n"
    out = rewrite(text, tmp_path)
    assert out.startswith("intro\n") and out.endswith("<!-- /verdicts -->\nend\n")
    assert "stale text" not in out and "3 comparisons (3 paired), up to 3 seeds" in out
    assert "| Does the method beat the MLE baseline `mle`? | 1 | 0 | 0 | 1 |" in out
    assert "- a − mle, NLL-oracle at α = 1: -0.300 [-0.400, -0.200] (n = 3): **better**" in out
    assert "seqgan − seqgan-const, reverse KL(G‖P) at α = 1" in out  # a control, inconclusive
    assert "(> 10,000 seeds)" in out
    assert "- b − mle" not in out  # inconclusive and not a control: only counted
    assert rewrite(out, tmp_path) == out  # idempotent


def test_check_fails_on_a_stale_block_and_passes_once_rewritten(tmp_path, capsys):
    report = _verdicts(tmp_path)
    md = tmp_path / "x.md"
    md.write_text(f"<!-- verdicts: {report} -->\nold\n<!-- /verdicts -->\n")
    assert main(["--check", str(md)]) == 1 and "old" in md.read_text()
    assert main([str(md)]) == 0 and main(["--check", str(md)]) == 0


def test_the_readmes_quote_the_committed_verdicts_as_generated():
    files = [ROOT / "README.md", ROOT / "reports" / "paper-oracle" / "README.md"]
    assert BLOCK.search(files[0].read_text())  # the headline is a generated block
    assert main(["--check", *map(str, files)]) == 0
