"""The command line's help for people: the methods and presets in a few lines, and one group's
options (a method's, `bench`'s or `pretrain`'s) with the values the selected preset gives them.

`python -m bench.run --help` lists the general options and ends with `epilog()`;
`python -m bench.run --help-options NAME [--preset P]` prints `group_help(NAME, P)`: each field
of NAME's config, its help text, the preset's value with the paper preset's beside it, and where
that default comes from.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from methods.base import PRESET_NAMES, MethodSpec
from methods.config import build, render

# the source tags the help texts cite, and what each is
SOURCE_TAGS = {
    "[HEAD]": "the original SeqGAN code at its last commit (LantaoYu/SeqGAN e2b52fb)",
    "[PAPER-ERA]": "the same repository at the commit of the paper's time (149b789)",
    "[PAPER]": "the paper of the method in question",
    "[CODE]": "that method's official code",
    "[WGAN]": "WGAN-GP's language model code (igul222/improved_wgan_training) and its paper",
    "[RELGAN]": "RelGAN's code (weilinie/RelGAN) and its ICLR-2019 paper",
    "[KHL]": "Kusner & Hernandez-Lobato 2016, GANs with the Gumbel-softmax distribution",
}
PRESET_LINES = {
    "smoke": "tiny budgets, seconds per cell: for tests and trying things",
    "quick": "the default: reduced budgets sized for 2 CPU cores",
    "long": "every method's published number of generator updates and the paper's "
    "pre-training, with quick's reduced discriminators",
    "paper": "the original code's schedule, discriminators and data: for a GPU",
}


def epilog(methods: dict[str, MethodSpec]) -> str:
    """The methods with one line each, the presets, the source tags, and where more help is."""
    width = max(map(len, methods)) + 2
    lines = ["methods (--methods; 'all' = every one):"]
    lines += [f"  {name:<{width}}{spec.summary}" for name, spec in methods.items()]
    lines += ["", "presets (--preset):"]
    lines += [f"  {name:<8}{PRESET_LINES[name]}" for name in PRESET_NAMES]
    lines += ["", "sources cited in the options' help:"]
    lines += [f"  {tag:<12}{text}" for tag, text in SOURCE_TAGS.items()]
    lines += [
        "",
        "Every hyperparameter is an option --NAME.FIELD (NAME a method, 'bench' for the shared",
        "settings, 'pretrain' for the shared MLE pre-training); --help-options NAME lists NAME's",
        "with the values of --preset and of the paper preset. Docs: docs/running.md.",
    ]
    return "\n".join(lines)


def field_text(field: dataclasses.Field) -> tuple[str, str]:
    """(what the field is, where its default comes from), split from `hp`'s composed help text
    "<help> (default <value>; <source>)"."""
    text = field.metadata.get("help", "")
    marker = f" (default {render(field.default)!r}; "
    cut = text.rfind(marker)
    if cut < 0 or not text.endswith(")"):
        return text, ""
    return text[:cut], text[cut + len(marker) : -1]


def group_help(name: str, config: type, presets: dict[str, dict[str, Any]], preset: str) -> str:
    """NAME's options: flag, help, the value under `preset` and under `paper`, the source."""
    chosen = build(config, name, presets[preset], {})
    paper = build(config, name, presets["paper"], {})
    out = [f"options of {name} (values: --preset {preset}, and the paper preset's):", ""]
    for f in dataclasses.fields(config):
        text, source = field_text(f)
        value, published = render(getattr(chosen, f.name)), render(getattr(paper, f.name))
        shown = f"{preset}: {value}" + ("" if preset == "paper" else f"; paper: {published}")
        out.append(f"  --{name}.{f.name.replace('_', '-')}  [{shown}]")
        body = text + (f" (default from: {source})" if source else "")
        out += textwrap.wrap(body, width=92, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(out)
