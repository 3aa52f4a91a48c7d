"""Rollout cost per batch at the paper's configuration: the original's loops vs the fast rollout,
and the fast rollout's completions scored by the exact oracle discriminator D* instead of D.

B = 64 samples, N = 16 completions per prefix, T = 20, V = 5000, the paper's 7.0M-parameter
discriminator. Run: `.venv/bin/pytest tests/test_rollout_benchmark.py --benchmark-only -p no:xdist`
(the reference, fast and oracle tests are in group "rollout"; the fast rollout's speed-up is
the reference's mean over its own, the oracle D*'s cost the oracle's mean over the fast one's).
With `--benchmark-disable` each body runs once and only the output checks apply.

The fast rollout gets a `Workspace` kept across rounds, as `SeqGANTrainer` keeps one across its
updates (the memory is reused; every value is recomputed each call).
"""

import time

import pytest
import torch

from methods.discriminator import Discriminator
from methods.generator import LSTMGenerator
from methods.oracle_discriminator import oracle_rollout_rewards
from methods.rollout import (
    Workspace,
    completions_scored,
    fast_rollout_rewards,
    reference_rollout_rewards,
)
from methods.seqgan import Config
from oracle.model import random_oracle

B, N, T, V = 64, 16, 20, 5000


@pytest.fixture(scope="module")
def paper_setup():
    generator = LSTMGenerator().init_normal_(0.1, torch.Generator().manual_seed(0))
    cfg = Config()
    sizes, maps = cfg.discriminator_filter_sizes, cfg.discriminator_num_filters
    discriminator = Discriminator(V, T, cfg.discriminator_emb_dim, sizes, maps)
    discriminator.init_original_(torch.Generator().manual_seed(1))
    assert sum(p.numel() for p in discriminator.parameters()) == 7_045_402
    x = generator.sample(B, rng=torch.Generator().manual_seed(2))
    return generator, discriminator, x


def run(benchmark, rollout, paper_setup, rounds, **kwargs):
    generator, discriminator, x = paper_setup
    rng = torch.Generator().manual_seed(3)
    rewards = benchmark.pedantic(
        lambda: rollout(generator, discriminator, x, N, rng, **kwargs), rounds=rounds, iterations=1
    )
    assert rewards.shape == (B, T) and ((rewards > 0) & (rewards < 1)).all()
    with torch.no_grad():  # the last position is D(x) itself, exactly
        assert torch.allclose(rewards[:, -1], discriminator.prob_real(x), atol=1e-5)
    if not benchmark.disabled:
        per_batch = benchmark.stats.stats.mean
        benchmark.extra_info["completions_per_s"] = completions_scored(B, T, N) / per_batch
        benchmark.extra_info["ms_per_batch"] = 1000 * per_batch
    return rewards


@pytest.mark.benchmark(group="rollout")
def test_reference_rollout(benchmark, paper_setup):
    run(benchmark, reference_rollout_rewards, paper_setup, rounds=3)


@pytest.mark.benchmark(group="rollout")
def test_fast_rollout(benchmark, paper_setup):
    chunk = Config().rollout_chunk
    run(benchmark, fast_rollout_rewards, paper_setup, 5, chunk=chunk, workspace=Workspace())


@pytest.mark.benchmark(group="rollout-paired")
def test_fast_rollout_paired_with_reference(benchmark, paper_setup):
    """The speed-up as a paired measurement: each timed fast round follows one reference call
    (run in pedantic's untimed setup and timed there), so both see the same machine state. On a
    shared VM whose speed drifts over minutes, separate tests can catch the two at different
    speeds; `extra_info["speedup_per_round"]` here cannot."""
    generator, discriminator, x = paper_setup
    rng = torch.Generator().manual_seed(3)
    reference_s, reference_rewards = [], []

    def reference_first():
        t0 = time.perf_counter()
        reference_rewards.append(reference_rollout_rewards(generator, discriminator, x, N, rng))
        reference_s.append(time.perf_counter() - t0)

    workspace = Workspace()
    fast_rollout_rewards(generator, discriminator, x, N, rng, workspace=workspace)  # warm-up
    rewards = benchmark.pedantic(
        lambda: fast_rollout_rewards(generator, discriminator, x, N, rng, workspace=workspace),
        setup=reference_first,
        rounds=3,
        iterations=1,
    )
    assert rewards.shape == (B, T) and ((rewards > 0) & (rewards < 1)).all()
    # one reference call per timed round (pedantic runs the setup before each; once if disabled),
    # computing the same estimator: D(x) itself at the last position
    assert len(reference_rewards) == (1 if benchmark.disabled else 3)
    assert all(s > 0 for s in reference_s)
    for reference in reference_rewards:
        assert reference.shape == (B, T)
        assert torch.allclose(reference[:, -1], rewards[:, -1], atol=1e-5)
    if not benchmark.disabled:
        fast_s = benchmark.stats.stats.data
        benchmark.extra_info["reference_s"] = reference_s
        benchmark.extra_info["speedup_per_round"] = [
            r / f for r, f in zip(reference_s, fast_s, strict=True)
        ]
        benchmark.extra_info["speedup_of_means"] = sum(reference_s) / sum(fast_s)


@pytest.mark.benchmark(group="rollout")
def test_oracle_rollout(benchmark, paper_setup):
    """The same batch's rollout scored by the exact D* of a paper-size oracle instead of the
    learned D (methods/oracle_discriminator.py): log P and log G of every completion."""
    generator, _, x = paper_setup
    oracle = random_oracle(1)  # V = 5000, E = H = 32, T = 20: the paper oracle's shapes
    rng, workspace = torch.Generator().manual_seed(3), Workspace()
    chunk = Config().rollout_chunk
    q = benchmark.pedantic(
        lambda: oracle_rollout_rewards(generator, oracle, x, N, rng, chunk, workspace),
        rounds=5,
        iterations=1,
    )
    assert q.shape == (B, T) and ((q >= 0) & (q <= 1)).all()
    d_star = torch.sigmoid(oracle.log_prob(x) - generator.log_prob(x))  # (B,)
    assert torch.allclose(q[:, -1], d_star, atol=1e-5)
    if not benchmark.disabled:
        benchmark.extra_info["ms_per_batch"] = 1000 * benchmark.stats.stats.mean
