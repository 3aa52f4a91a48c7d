"""SeqGAN with a baseline: the advantages by hand, unbiasedness by exact enumeration, the trainer.

The enumeration test follows shared/reference/pg-family.md §3.6: V = 3, T = 3, so the exact
gradient of J = sum_y G(y) D(y) is a sum over 27 sequences, against which the mean of many
batches of the estimator g = (1/B) sum_{b,t} A_{b,t} grad log G(y_t | y_<t) is compared.
"""

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from methods import METHODS
from methods.base import TrainContext
from methods.config import ConfigError, build
from methods.discriminator import Discriminator
from methods.generator import LSTMGenerator
from methods.pg import ROLLOUT_PRESETS
from methods.rollout import fast_rollout_rewards
from methods.seqgan_baseline import (
    ADVANTAGES,
    Config,
    SeqGANBaselineTrainer,
    loo_advantage,
    previous_advantage,
)
from tests.conftest import tiny_generator

# ----- the advantages, by hand -----


def test_loo_subtracts_the_mean_of_the_other_samples_per_position():
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 3.0]])  # (B=3, T=2)
    expected = torch.tensor([[1 - 2.5, 0 - 1.5], [2 - 2.0, 0 - 1.5], [3 - 1.5, 3 - 0.0]])
    assert torch.allclose(loo_advantage(q), expected)
    # = B/(B-1) (Q - batch mean), so it sums to zero over the batch at every position
    assert torch.allclose(loo_advantage(q), 1.5 * (q - q.mean(dim=0)))
    assert torch.allclose(loo_advantage(q).sum(dim=0), torch.zeros(2))


def test_loo_of_a_q_constant_per_position_is_zero():
    q = torch.tensor([0.2, 0.5, 0.9]).expand(4, 3)  # (B=4, T=3): every sample alike
    assert torch.allclose(loo_advantage(q), torch.zeros(4, 3), atol=1e-7)  # up to rounding


def test_previous_subtracts_the_previous_q_and_v0_at_the_first_token():
    q = torch.tensor([[0.5, 0.7, 0.6], [0.3, 0.2, 0.4], [0.1, 0.4, 0.8]])  # (B=3, T=3)
    v0 = torch.tensor([(0.4 + 0.8) / 2, (0.6 + 0.8) / 2, (0.6 + 0.4) / 2])  # LOO of D = Q[:, -1]
    expected = torch.tensor(
        [
            [0.5 - v0[0], 0.7 - 0.5, 0.6 - 0.7],
            [0.3 - v0[1], 0.2 - 0.3, 0.4 - 0.2],
            [0.1 - v0[2], 0.4 - 0.1, 0.8 - 0.4],
        ]
    )
    assert torch.allclose(previous_advantage(q), expected)


def test_previous_advantages_telescope_to_d_minus_v0():
    q = torch.rand(6, 5, generator=torch.Generator().manual_seed(0))  # (B, T)
    a = previous_advantage(q)
    v0 = (q[:, -1].sum() - q[:, -1]) / 5  # (B,)
    assert torch.allclose(a.sum(dim=1), q[:, -1] - v0, atol=1e-6)
    # a Q that does not change along a sequence leaves only the first token's term
    flat = q[:, :1].expand(6, 5)
    assert torch.equal(previous_advantage(flat)[:, 1:], torch.zeros(6, 4))


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_leading_dimensions_are_independent_groups(name):
    advantage = ADVANTAGES[name]
    q = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(1))  # (K, B, T)
    grouped = advantage(q)
    assert torch.allclose(grouped, torch.stack([advantage(group) for group in q]))


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_one_sample_has_no_leave_one_out_mean(name):
    with pytest.raises(ValueError, match="at least 2 samples"):
        ADVANTAGES[name](torch.rand(1, 4))


# ----- unbiasedness by exact enumeration -----

EV, ET, EB, EN = 3, 3, 8, 4  # vocabulary, length, batch, rollouts
BATCHES = 50_000
Z_MAX = 3.5


def grpo_advantage(q):
    """GRPO's group normalisation per position (pg-family.md §3.3): NOT a valid baseline."""
    mean, std = q.mean(dim=-2, keepdim=True), q.std(dim=-2, keepdim=True)  # (K, 1, T)
    return (q - mean) / (std + 1e-8)


def own_completions_advantage(q):
    """Q minus the mean of the prefix's own N completions, which is the rollout's Q itself
    (D(Y) at t = T): NOT a valid baseline (pg-family.md §3.2)."""
    return q - q


def batch_mean_advantage(q):
    """Q minus the batch mean including the sample itself: biased in scale only, by (B-1)/B."""
    return q - q.mean(dim=-2, keepdim=True)


ESTIMATORS = {
    "none": lambda q: q,
    "loo": loo_advantage,
    "previous": previous_advantage,
    "batch-mean": batch_mean_advantage,
    "grpo": grpo_advantage,
    "own-completions": own_completions_advantage,
}


def _flat_grad(out, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(out, params, retain_graph=True)])


@pytest.fixture(scope="module")
def enumerated():
    """The estimators' per-batch gradients (K, P) and the exact gradient (P,), V = T = 3."""
    gen = LSTMGenerator(EV, 4, 4, ET).init_normal_(1.0, torch.Generator().manual_seed(0))
    d = Discriminator(EV, ET, 4, (1, 2, 3), (3, 3, 3))
    d.init_original_(torch.Generator().manual_seed(1))
    every = torch.tensor(list(itertools.product(range(EV), repeat=ET)))  # (27, T), row-major
    with torch.no_grad():  # spread D over ~(0.2, 0.65), centred, instead of all near 1/2
        d.out.weight.mul_(150.0)
        logits = d(every)  # (27, 2)
        d.out.bias[1] -= (logits[:, 1] - logits[:, 0]).median()
        reward = d.prob_real(every)  # (27,)
    params = list(gen.parameters())
    token_logp = gen.token_log_probs(every)  # (27, T)
    exact = _flat_grad((token_logp.sum(dim=1).exp() * reward).sum(), params)  # (P,): grad J
    # score[s, t] = grad log G(y_t | y_<t) of sequence s: all the estimator ever multiplies
    score = torch.stack([_flat_grad(lp, params) for lp in token_logp.flatten()])  # (27*T, P)

    rng = torch.Generator().manual_seed(5)  # seeds 2, 6, 7, 8: max |z| 3.3, 1.8, 3.0, 1.7
    x = gen.sample(BATCHES * EB, rng=rng, batch_size=BATCHES * EB)  # (K*B, T)
    q = fast_rollout_rewards(gen, d, x, EN, rng, chunk=65_536).view(BATCHES, EB, ET)  # (K, B, T)
    seq = (x * EV ** torch.arange(ET - 1, -1, -1)).sum(dim=1).view(BATCHES, EB)  # (K, B)

    def per_batch(a):  # (K, B, T) -> (K, P): each batch's g, summed per distinct (s, t)
        weight = torch.zeros(BATCHES, every.shape[0], ET)  # (K, 27, T)
        weight.scatter_add_(1, seq[:, :, None].expand(-1, -1, ET), a)
        return weight.view(BATCHES, -1) @ score / EB  # (K, P)

    grads = {name: per_batch(advantage(q)) for name, advantage in ESTIMATORS.items()}
    return grads, exact


def _statistics(g, exact):
    """z of the mean along the exact gradient (the scale) and along 8 fixed random directions
    orthogonal to it (the direction), the fitted scale, and the per-batch MSE."""
    unit = exact / exact.norm()
    others = torch.randn(8, exact.numel(), generator=torch.Generator().manual_seed(3))
    others = F.normalize(others - (others @ unit)[:, None] * unit, dim=1)  # (8, P), ⟂ exact
    along, across = g @ unit, g @ others.T  # (K,), (K, 8)
    k = g.shape[0]
    z_scale = (along.mean() - exact.norm()) / (along.std() / k**0.5)
    z_direction = across.mean(dim=0) / (across.std(dim=0) / k**0.5)  # (8,)
    return {
        "z_scale": z_scale.item(),
        "z_direction": z_direction.abs().max().item(),
        "scale": (along.mean() / exact.norm()).item(),
        "mse": (g - exact).square().sum(dim=1).mean().item(),
    }


@pytest.mark.parametrize("name", ["none", "loo", "previous"])
def test_valid_baselines_are_unbiased(enumerated, name):
    grads, exact = enumerated
    stats = _statistics(grads[name], exact)
    assert abs(stats["z_scale"]) < Z_MAX and stats["z_direction"] < Z_MAX, stats
    assert abs(stats["scale"] - 1) < 0.02, stats


def test_valid_baselines_lower_the_per_batch_error_and_the_default_lowest(enumerated):
    grads, exact = enumerated
    mse = {name: _statistics(grads[name], exact)["mse"] for name in ("none", "loo", "previous")}
    assert mse["loo"] < mse["none"] / 4 and mse["previous"] < mse["none"] / 4, mse
    default = next(f for f in dataclasses.fields(Config) if f.name == "baseline")
    assert mse[default.default] == min(mse.values()), mse  # the help text's numbers: this ordering


def test_the_test_detects_a_scale_bias(enumerated):
    """The batch mean with the sample itself: the direction is exact, the scale (B-1)/B."""
    grads, exact = enumerated
    stats = _statistics(grads["batch-mean"], exact)
    assert abs(stats["scale"] - (EB - 1) / EB) < 0.02 and stats["z_scale"] < -10, stats
    assert stats["z_direction"] < Z_MAX, stats


def test_grpo_normalisation_biases_the_direction(enumerated):
    grads, exact = enumerated
    stats = _statistics(grads["grpo"], exact)
    assert stats["z_direction"] > 10 and abs(stats["z_scale"]) > 10, stats


def test_own_completions_give_a_zero_gradient(enumerated):
    grads, exact = enumerated
    assert torch.equal(grads["own-completions"], torch.zeros_like(grads["none"]))
    # and zero is far from the exact gradient: > 10 standard errors of the same batches' mean
    along = grads["none"] @ (exact / exact.norm())  # (K,)
    assert exact.norm() > 10 * along.std() / BATCHES**0.5


# ----- the trainer -----

V, T = 50, 8
TINY = dict(batch_size=8, rollout_num=2, discriminator_samples=64, d_pretrain_steps=1)


def make_trainer(task, seed=0, **overrides):
    cfg = Config(**(ROLLOUT_PRESETS["smoke"] | TINY | overrides))
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(seed), seed)
    return SeqGANBaselineTrainer(cfg, ctx, tiny_generator(task, std=0.5))


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_rewards_are_the_advantage_of_the_rollout_q(task, name):
    trainer = make_trainer(task, baseline=name)
    x = trainer.generator.sample(8, rng=trainer.rng)  # (B, T)
    state = trainer.rng.get_state()
    a, perf = trainer.rewards(x)
    trainer.rng.set_state(state)  # the same rollout again, as SeqGAN's trainer makes it
    q, _ = trainer.rollout_rewards(x)
    assert torch.allclose(a, ADVANTAGES[name](q)) and perf["train/q_mean"] == q.mean().item()
    assert 0.0 < perf["train/q_mean"] < 1.0 and perf["perf/rollout_ms"] > 0
    assert not torch.allclose(a, q)  # the baseline does subtract something


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_step_logs_the_raw_q_mean_and_a_centred_reward(task, name):
    out = make_trainer(task, baseline=name).step()
    assert 0.0 < out["train/q_mean"] < 1.0 and abs(out["train/reward"]) < 1e-6
    assert {"train/g_loss", "train/d_loss", "perf/rollout_ms"} <= out.keys()


def test_registry_entry_and_config():
    spec = METHODS["seqgan-baseline"]
    assert spec.config is Config and spec.presets is ROLLOUT_PRESETS
    for preset in ("smoke", "quick", "paper"):
        build(Config, "seqgan-baseline", spec.presets[preset], {})
    with pytest.raises(ConfigError, match="choose from loo, previous"):
        build(Config, "seqgan-baseline", {}, {"baseline": "grpo"})
    with pytest.raises(ConfigError, match="batch-size=1 is too small"):
        Config(batch_size=1)
