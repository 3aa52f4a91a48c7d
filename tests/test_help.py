"""The options' help texts: within this repository, and split into what and where-from."""

import dataclasses
import re

from bench.config import BenchConfig
from bench.help import field_text
from bench.train.pretrain import PretrainConfig
from methods import METHODS

CONFIGS = [spec.config for spec in METHODS.values()] + [BenchConfig, PretrainConfig]
# the reference notes beside the repository (../shared), by name or by section sign
OUTSIDE = re.compile(r"shared/|relaxation-gans|pg-family|published-numbers|seqgan-original|§")


def test_no_option_help_points_outside_the_repository():
    """Help texts cite papers and code by their tags ([HEAD], [RELGAN] ...) and this
    repository's docs; never the reference notes beside it."""
    found = [
        (cfg.__name__, f.name)
        for cfg in CONFIGS
        for f in dataclasses.fields(cfg)
        if OUTSIDE.search(f.metadata.get("help", "").replace("[RELGAN] paper §", ""))
    ]
    assert found == []


def test_the_outside_check_sees_a_reference_note():
    assert OUTSIDE.search("source: pg-family.md §2.4 pitfall 3")
    assert not OUTSIDE.search("[HEAD] TOTAL_BATCH (docs/methods.md, RankGAN)")


def test_every_field_help_splits_into_text_and_source():
    for cfg in CONFIGS:
        for f in dataclasses.fields(cfg):
            text, _ = field_text(f)
            assert text and "(default " not in text, (cfg, f.name)
