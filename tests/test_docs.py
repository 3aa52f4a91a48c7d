"""Docs that stay true: every relative link in the README and docs/ resolves (file and heading
anchor), and every `python -m bench.…` command they show parses with the real parser."""

import re
import shlex
from pathlib import Path

import pytest

from bench.cli import build_parser as run_parser
from bench.report.__main__ import build_parser as report_parser
from bench.rescore import build_parser as rescore_parser
from bench.sample import build_parser as sample_parser
from tests.conftest import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "reports" / "paper-oracle" / "README.md"])
PAGES += sorted((ROOT / "docs").glob("*.md"))
PARSERS = {
    "run": run_parser,
    "report": report_parser,
    "rescore": rescore_parser,
    "sample": sample_parser,
}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python -m bench\.(run|report|rescore|sample)\b([^`\n]*)")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # a link shown as code is not a link
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert broken == []


def test_the_link_check_sees_a_broken_file_and_a_broken_anchor(tmp_path):
    page = tmp_path / "a.md"
    page.write_text(
        "# Top part\n[ok](#top-part) [gone](b.md) [bad](#nowhere) [web](https://x) `[c](d.png)`\n"
    )
    assert links(page) == ["#top-part", "b.md", "#nowhere"]
    assert anchors(page) == {"top-part"}
    assert slug("Benchmarks: SeqGAN's rollout cost") == "benchmarks-seqgans-rollout-cost"


def commands(page: Path) -> list[tuple[str, list[str]]]:
    """(entry, argv) of every `python -m bench.<entry> …` shown, a backslash-continued line
    joined; a trailing `# comment` dropped; shapes with placeholders (<x>, …) left out."""
    text = page.read_text().replace("\\\n", " ")
    out = []
    for entry, rest in COMMAND.findall(text):
        rest = rest.split(" # ")[0].split("  #")[0]
        if any(mark in rest for mark in ("<", "…", "...", "|", "&&")):
            continue
        out.append((entry, shlex.split(rest)))
    return out


# docs/bad-input.md shows bad commands on purpose: tests/test_bad_input_table.py runs each
SHOWN = [
    (page, entry, argv)
    for page in PAGES
    if page.name != "bad-input.md"
    for entry, argv in commands(page)
]


@pytest.mark.parametrize(
    ("page", "entry", "argv"),
    SHOWN,
    ids=[f"{p.relative_to(ROOT)}:{e}:{' '.join(a)[:40]}" for p, e, a in SHOWN],
)
def test_every_command_shown_parses_with_the_real_parser(page, entry, argv):
    if "--help" in argv:
        pytest.skip("prints help")
    PARSERS[entry]().parse_args(argv)  # SystemExit(2) with argparse's message on a bad option


def test_the_command_check_finds_commands_and_fails_on_a_bad_option(tmp_path):
    page = tmp_path / "a.md"
    page.write_text(
        "run `python -m bench.run --methods mle --seeds 3` then\n"
        "```\npython -m bench.report --experiment x \\\n  --no-publish   # rebuild\n```\n"
        "and `python -m bench.run --methods <name>`\n"
    )
    assert commands(page) == [
        ("run", ["--methods", "mle", "--seeds", "3"]),
        ("report", ["--experiment", "x", "--no-publish"]),
    ]
    assert len(SHOWN) >= 10  # the README and docs show commands of every entry point
    assert {e for _, e, _ in SHOWN} == set(PARSERS)
    with pytest.raises(SystemExit):
        run_parser().parse_args(["--no-such-option"])
