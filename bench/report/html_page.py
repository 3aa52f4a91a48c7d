"""The report as one self-contained HTML page: README.md's Markdown with its plots embedded.

MLflow's artifact viewer renders an `.html` artifact in a sandboxed iframe, where a link to a
sibling file cannot load; so every image is a `data:` URI and no `src` or `href` points at a
file. The Markdown is rendered by markdown-it-py (CommonMark and tables), which `rich`
depends on.
"""

from __future__ import annotations

import base64
import html
import re

from markdown_it import MarkdownIt

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em;
       color: #1f2328; line-height: 1.45; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; display: block; overflow-x: auto; font-size: 0.85em;
        margin: 0.5em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; white-space: nowrap; }
th { background: #f6f8fa; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; font-size: 0.9em; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em; }
.missing { color: #9a6700; font-style: italic; }
"""

# a link that leaves the page on purpose; any other (a sibling file) is rendered as plain text
_EXTERNAL = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)


def data_uri(png: bytes) -> str:
    """A PNG's bytes as a `data:image/png;base64,...` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def report_html(markdown: str, images: dict[str, bytes], title: str) -> str:
    """The page of `markdown` (README.md's text) with each image whose link is a key of
    `images` (file name -> PNG bytes) embedded as a data: URI; an image not in `images` is
    named in its place, and a link to a file is kept as its text (with the target as a
    tooltip), so the page loads nothing else."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    for token in tokens:
        _localize(token.children or [], images)
    body = md.renderer.render(tokens, md.options, {})
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _localize(inline: list, images: dict[str, bytes]) -> None:
    """Make one inline run of tokens self-contained, in place: an image's src its data: URI
    (or a note that the plot is missing), a link to a file (and its closing tag) a span."""
    kept: list[bool] = []  # per open link: does it stay a link?
    for token in inline:
        if token.type == "image":
            src = str(token.attrGet("src") or "")
            if src in images:
                token.attrSet("src", data_uri(images[src]))
                continue
            alt = html.escape(token.content or src)  # no file: say so, not a broken image
            token.type, token.tag, token.nesting, token.children = "html_inline", "", 0, None
            token.content = f'<span class="missing">[plot not written: {alt} ({src})]</span>'
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            kept.append(bool(_EXTERNAL.match(href)))
            if not kept[-1]:
                token.tag, token.attrs = "span", {"title": href}
        elif token.type == "link_close" and kept and not kept.pop():
            token.tag = "span"
