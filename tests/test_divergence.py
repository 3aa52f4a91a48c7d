"""Exact divergences on enumerable and closed-form cases (bench/metrics/divergence.py)."""

import itertools
import math

import pytest
import torch

from bench.metrics.divergence import forward_kl, jensen_shannon, reverse_kl
from bench.metrics.evaluate import scored
from bench.metrics.nll import nll_oracle
from methods.generator import UnigramModel
from tests.conftest import tiny_task

P_LOGITS = torch.tensor([2.0, 0.5, -1.0])  # an i.i.d. "oracle" over V = 3 tokens


def _p():
    return UnigramModel(torch.softmax(P_LOGITS, 0), seq_len=2)


def _u():
    return UnigramModel.uniform(3, 2)


def test_kls_of_iid_tokens_match_the_closed_form_within_sampling_error():
    """P, G i.i.d. over tokens: per-token KL is the KL of the token distributions."""
    p, u = torch.softmax(P_LOGITS, 0).double(), torch.full((3,), 1 / 3, dtype=torch.float64)
    rng = torch.Generator().manual_seed(0)
    y = _u().sample_portable(50_000, rng=rng)  # (n, 2) from G = uniform
    x = _p().sample_portable(50_000, rng=rng)  # (n, 2) from P
    rkl, rse = reverse_kl(_p().log_prob(y), _u().log_prob(y), seq_len=2)
    fkl, fse = forward_kl(_p().log_prob(x), _u().log_prob(x), seq_len=2)
    assert rkl == pytest.approx((u * (u / p).log()).sum().item(), abs=4 * rse)
    assert fkl == pytest.approx((p * (p / u).log()).sum().item(), abs=4 * fse)
    assert 0 < rse < 0.01 and 0 < fse < 0.01


def test_jensen_shannon_matches_the_enumerated_value():
    """V = 3, T = 2: all 9 sequences enumerated give the exact sequence-level JSD."""
    seqs = torch.tensor(list(itertools.product(range(3), repeat=2)))  # (9, 2)
    lp, lg = _p().log_prob(seqs).double(), _u().log_prob(seqs).double()  # (9,)
    m = torch.logaddexp(lp, lg) - math.log(2)
    exact = 0.5 * (lp.exp() * (lp - m)).sum() + 0.5 * (lg.exp() * (lg - m)).sum()
    rng = torch.Generator().manual_seed(1)
    x, y = _p().sample_portable(100_000, rng=rng), _u().sample_portable(100_000, rng=rng)
    jsd = jensen_shannon(_p().log_prob(x), _u().log_prob(x), _p().log_prob(y), _u().log_prob(y))
    assert 0 < exact.item() < math.log(2)
    assert jsd == pytest.approx(exact.item(), abs=0.005)


def test_identical_densities_give_zero_divergences_exactly():
    lp = torch.tensor([-3.0, -1.5, -7.25])
    assert reverse_kl(lp, lp, 4) == (0.0, 0.0) and forward_kl(lp, lp, 4) == (0.0, 0.0)
    assert jensen_shannon(lp, lp, lp, lp) == pytest.approx(0.0, abs=1e-15)


def test_disjoint_densities_give_jensen_shannon_ln2():
    """Where each density gives the other's samples ~0 mass, JSD reaches its bound ln 2."""
    hi, lo = torch.full((5,), -1.0), torch.full((5,), -500.0)
    assert jensen_shannon(hi, lo, lo, hi) == pytest.approx(math.log(2), abs=1e-12)


def test_the_oracle_scored_against_itself_has_zero_divergences():
    task = tiny_task()
    samples = task.oracle.sample(500, rng=torch.Generator().manual_seed(0))  # (500, T)
    point = scored(task.oracle, task, samples, task.test, task.oracle.log_prob(task.test))
    assert point["reverse_kl"] == point["forward_kl"] == point["jeffreys"] == 0.0
    assert point["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert point["entropy"] == point["nll_oracle"]


def test_cooling_games_nll_oracle_below_the_oracles_entropy_but_not_the_reverse_kl():
    """The oracle at temperature 1/2 scores an NLL-oracle below the oracle's own entropy rate
    (so that is no floor), while its reverse KL stays clearly positive."""
    task = tiny_task()
    rng = torch.Generator().manual_seed(0)
    entropy_rate = nll_oracle(task.oracle, task.oracle.sample(4000, rng=rng))
    cooled = task.oracle.sample(4000, rng=rng, temperature=0.5)  # (4000, T)
    point = scored(task.oracle, task, cooled, task.test, task.oracle.log_prob(task.test), 0.5)
    assert point["nll_oracle"] < entropy_rate - 0.5
    assert point["reverse_kl"] > 10 * point["reverse_kl_se"] > 0
    assert point["reverse_kl"] == pytest.approx(point["nll_oracle"] - point["entropy"], abs=1e-6)
    assert point["forward_kl"] > 0 and point["jeffreys"] > point["reverse_kl"]
