"""MaliGAN-basic: the weights' algebra, the exact zero update of a constant D, and the oracle-D
limit in which the estimator is the maximum-likelihood gradient."""

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from methods import METHODS
from methods.base import TrainContext
from methods.config import build
from methods.generator import LSTMGenerator
from methods.maligan import (
    PRESETS,
    Config,
    MaliGANTrainer,
    effective_sample_size,
    mali_advantages,
)
from methods.pg import PGConfig, RolloutConfig
from tests.conftest import tiny_generator

T = 8  # the tiny task's length


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


# ----- the weights -----


def test_equal_logits_give_weights_exactly_one_over_b_and_advantages_exactly_zero():
    for b in (1, 2, 3, 7, 64, 100):
        for value in (0.0, -3.25, 12.0):
            advantages, weights = mali_advantages(torch.full((b,), value))
            assert torch.equal(weights, torch.full((b,), 1.0 / b))
            assert torch.equal(advantages, torch.zeros(b))


def test_weights_sum_to_one_and_advantages_to_zero():
    logits = torch.randn(5, 64, generator=rng(1), dtype=torch.float64) * 3  # 5 batches of 64
    advantages, weights = mali_advantages(logits)
    assert advantages.shape == weights.shape == (5, 64) and (weights >= 0).all()
    assert torch.allclose(weights.sum(dim=-1), torch.ones(5, dtype=torch.float64), atol=1e-12)
    assert advantages.sum(dim=-1).abs().max() < 1e-12
    assert torch.allclose(advantages, weights - 1 / 64)
    a32, w32 = mali_advantages(logits.float())
    assert (w32.sum(dim=-1) - 1).abs().max() < 1e-6 and a32.sum(dim=-1).abs().max() < 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_softmax_of_the_logit_is_the_normalised_odds(dtype):
    d = 0.01 + 0.98 * torch.rand(4, 64, generator=rng(2), dtype=torch.float64)  # D in [.01, .99]
    odds = d / (1 - d)  # r_D, the paper's form
    expected = odds / odds.sum(dim=-1, keepdim=True)  # (4, 64)
    logit = (torch.log(d) - torch.log1p(-d)).to(dtype)
    _, weights = mali_advantages(logit)
    relative = (weights.double() - expected).abs() / expected
    assert relative.max() < (1e-12 if dtype == torch.float64 else 1e-6)


def test_a_confident_discriminator_gives_finite_weights_where_the_odds_overflow():
    logit = torch.tensor([200.0, 0.0, -200.0])  # D = 1 - 1e-87: D/(1-D) is inf in float32
    d = torch.sigmoid(logit)
    assert not torch.isfinite(d / (1 - d)).all()
    advantages, weights = mali_advantages(logit)
    assert torch.equal(weights, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(advantages, torch.tensor([2.0, -1.0, -1.0]) / 3)


def test_effective_sample_size_is_b_for_equal_weights_and_1_for_one_hot():
    for b in (1, 4, 64):
        assert effective_sample_size(torch.full((b,), 1.0 / b)).item() == pytest.approx(b)
        assert effective_sample_size(F.one_hot(torch.tensor(b - 1), b).float()).item() == 1.0
    half = torch.tensor([0.5, 0.5, 0.0, 0.0])  # two samples share the weight: ESS 2
    assert effective_sample_size(half).item() == 2.0
    _, weights = mali_advantages(torch.tensor([[0.0] * 8, [50.0] + [0.0] * 7]))
    assert torch.allclose(effective_sample_size(weights), torch.tensor([8.0, 1.0]))


# ----- the oracle discriminator: the estimator's mean is the MLE gradient -----


def test_with_the_optimal_discriminator_the_mean_update_is_the_mle_gradient():
    """V=3, T=3: all 27 sequences enumerated. With D* = p_o / (p_o + p_theta), exactly logit D* =
    log p_o - log p_theta, the mean over many batches of sum_b A_b grad log p_theta(Y_b), Y_b ~
    p_theta, tends to the MLE gradient sum_x p_o(x) grad log p_theta(x): the bias of
    self-normalisation shrinks as O(1/B). Per-sequence gradients are computed once, so a batch's
    gradient is a weighted sum of rows of that table and a million samples cost little."""
    vocab, length = 3, 3
    oracle = LSTMGenerator(vocab, 4, 4, length).init_normal_(2.0, rng(1))  # KL(p_o||p_theta) 1.25
    model = LSTMGenerator(vocab, 4, 4, length).init_normal_(0.5, rng(2))
    seqs = torch.tensor(list(itertools.product(range(vocab), repeat=length)))  # (27, T)
    log_p_oracle = oracle.log_prob(seqs).double()  # (27,)
    log_p = model.token_log_probs(seqs).sum(dim=1)  # (27,)
    params = list(model.parameters())
    rows = [torch.autograd.grad(lp, params, retain_graph=True) for lp in log_p]
    grads = torch.stack([torch.cat([g.flatten() for g in row]) for row in rows]).double()  # (27, P)
    log_p = log_p.detach().double()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    mle = log_p_oracle.exp() @ grads  # (P,)
    logit_optimal = log_p_oracle - log_p  # (27,): logit D*(x), exactly

    def mean_update(batch, weighting, samples=2**20, seed=0):
        """(cosine, norm ratio) with the MLE gradient of the mean update over samples/batch
        batches, with per-sequence advantages weighting(logits (n, B)) -> (n, B)."""
        n = samples // batch
        draws = torch.multinomial(log_p.exp().float(), n * batch, True, generator=rng(seed))
        idx = draws.view(n, batch)  # (n, B): indices of the sampled sequences
        advantages = weighting(logit_optimal[idx])  # (n, B)
        coef = torch.zeros(len(seqs), dtype=torch.float64).index_add_(
            0, idx.flatten(), advantages.flatten()
        )  # (27,): summed advantage of each distinct sequence
        update = coef @ grads / n  # (P,)
        return F.cosine_similarity(update, mle, dim=0).item(), (update.norm() / mle.norm()).item()

    def mali(logits):
        return mali_advantages(logits)[0]

    batches = (2, 8, 64, 512)
    cosines, ratios = zip(*(mean_update(b, mali) for b in batches), strict=True)
    # measured over sampling seeds 0-3: cosine 0.69, 0.970, 0.9997, 0.99999; norm ratio 0.26,
    # 0.65, 0.94-0.95, 0.991-0.998
    assert all(a < b for a, b in zip(cosines, cosines[1:], strict=False))
    assert all(a < b for a, b in zip(ratios, ratios[1:], strict=False))
    assert cosines[0] < 0.8 and cosines[1] > 0.95 and cosines[-1] > 0.9999
    assert ratios[0] < 0.4 and 0.98 < ratios[-1] < 1.005

    # the power of the check: normalising D itself (Texygen's reward, no D/(1-D)) plateaus
    def texygen(logits):
        d = torch.sigmoid(logits)  # (n, B)
        return d / d.sum(dim=-1, keepdim=True) - 1 / d.shape[-1]

    cosine, ratio = mean_update(512, texygen)  # measured: 0.896, 0.51 at seeds 0-3
    assert cosine < 0.95 and ratio < 0.7


# ----- the trainer -----


# the smoke preset, smaller still: every trainer test stays around a second
TINY = dict(batch_size=8, discriminator_samples=64, d_pretrain_steps=1)


def make_trainer(task, seed=0, **overrides):
    cfg = Config(**(PRESETS["smoke"] | TINY | overrides))
    ctx = TrainContext(task, torch.device("cpu"), rng(seed), seed)
    return MaliGANTrainer(cfg, ctx, tiny_generator(task, std=0.5))


def test_rewards_are_the_normalised_odds_of_d_given_to_every_token(task):
    trainer = make_trainer(task)
    with torch.no_grad():
        trainer.discriminator.out.weight.mul_(20)  # rewards spread well away from 1/B
    calls = []
    trainer.discriminator.out.register_forward_hook(lambda *a: calls.append(1))
    x = trainer.generator.sample(8, rng=rng(3))
    q, scalars = trainer.rewards(x)
    assert len(calls) == 1  # one D pass on the batch, no rollout
    with torch.no_grad():
        d = trainer.discriminator.prob_real(x).double()  # (B,), dropout off
    odds = d / (1 - d)
    weights = odds / odds.sum()
    assert q.shape == (8, T) and not q.requires_grad
    assert torch.allclose(q, (weights - 1 / 8)[:, None].expand(8, T).float(), atol=1e-6)
    assert q.std(dim=0).max() > 0.01  # the check compares values that differ
    assert scalars["train/ess"] == pytest.approx(1 / weights.square().sum().item(), rel=1e-5)
    assert scalars["train/max_weight"] == pytest.approx(weights.max().item(), rel=1e-5)
    assert scalars["train/d_real"] == pytest.approx(d.mean().item(), rel=1e-5)
    assert 1.0 <= scalars["train/ess"] < 8.0


def test_a_constant_discriminator_gives_an_exactly_zero_generator_update(task):
    trainer = make_trainer(task)
    with torch.no_grad():
        trainer.discriminator.out.weight.zero_()  # logits = the bias: the same for every x
    x = trainer.generator.sample(8, rng=rng(4))
    q, scalars = trainer.rewards(x)
    assert torch.equal(q, torch.zeros(8, T))
    assert scalars["train/max_weight"] == 1 / 8 and scalars["train/ess"] == pytest.approx(8)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.update_generator(x, q)
    assert all(p.grad is not None and not p.grad.any() for p in trainer.generator.parameters())
    after = trainer.generator.parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # Adam: 0 step
    # a whole step too: its batch is weighted before the d-steps move D off the constant
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    out = trainer.step()
    after = trainer.generator.parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert out["train/g_loss"] == 0.0 and out["train/grad_norm"] == 0.0
    d_after = trainer.discriminator.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_after, strict=True))


def test_step_updates_the_generator_and_logs_the_weights_not_a_rollout(task):
    trainer = make_trainer(task)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    out = trainer.step()
    assert {"train/ess", "train/max_weight", "train/d_real", "train/d_loss"} <= out.keys()
    assert "perf/rollout_ms" not in out and "perf/completions_per_s" not in out
    assert 1.0 <= out["train/ess"] <= 8.0 and 1 / 8 <= out["train/max_weight"] <= 1.0
    assert abs(out["train/reward"]) < 1e-6  # the advantages' mean: 0 by construction
    after = trainer.generator.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_config_has_no_rollout_fields_and_the_paper_preset_is_seqgans_schedule():
    assert METHODS["maligan"].config is Config and METHODS["maligan"].presets is PRESETS
    assert issubclass(Config, PGConfig) and not issubclass(Config, RolloutConfig)
    names = {f.name for f in dataclasses.fields(Config)}
    assert names == {f.name for f in dataclasses.fields(PGConfig)}
    assert not {"rollout_num", "rollout", "rollout_chunk"} & names
    paper = build(Config, "maligan", PRESETS["paper"], {})
    assert (paper.updates, paper.batch_size, paper.d_steps, paper.d_epochs) == (200, 64, 5, 3)
    assert paper.discriminator_filter_sizes == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
    assert "MaliGAN-basic" in METHODS["maligan"].summary
