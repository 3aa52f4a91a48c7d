"""CoT: its generator loss is the exact per-prefix KL(G‖M), its mediator learns ½(P + G)."""

import itertools
import math

import pytest
import torch

from methods.base import TrainContext
from methods.config import build
from methods.cot import PRESETS, Config, CoTTrainer, Mediator, cot_loss
from tests.conftest import tiny_generator, tiny_task

V, T = 3, 3  # 27 sequences: every one can be enumerated


@pytest.fixture(scope="module")
def task():
    return tiny_task(vocab=V, seq_len=T, n=4096)


def _trainer(task, gen, **overrides):
    cfg = build(Config, "cot", PRESETS["smoke"] | overrides, {})
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(0), 0)
    return CoTTrainer(cfg, ctx, gen)


def _prefix_kl(gen, med, x):
    """Σ over the prefixes s_t of the rows of x (B, T) of KL(G(·|s_t) ‖ M(·|s_t)), from each
    model's step interface, one prefix at a time; divided by B·T."""
    total = 0.0
    for row in x:
        g_state, m_state = gen.initial_state(1), med.initial_state(1)
        token = gen.start_tokens(1)
        for t in range(x.shape[1]):
            g_logits, g_state = gen.step(token, g_state)  # (1, V)
            m_logits, m_state = med.step(token, m_state)  # (1, V)
            g, m = torch.log_softmax(g_logits, -1), torch.log_softmax(m_logits, -1).detach()
            total = total + (g.exp() * (g - m)).sum()
            token = row[t : t + 1]
    return total / x.numel()


def test_generator_loss_gradient_is_the_exact_per_prefix_kl_gradient(task):
    gen = tiny_generator(task, std=1.0)
    med = Mediator(V, 4, 4, T, keep=1.0).init_normal_(1.0, torch.Generator().manual_seed(3))
    x = gen.sample(5, rng=torch.Generator().manual_seed(1))  # (5, T)
    params = list(gen.parameters())
    loss = cot_loss(gen(x), med(x))
    expected = _prefix_kl(gen, med, x)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    got = torch.autograd.grad(loss, params)
    want = torch.autograd.grad(expected, params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in got)
    assert all(p.grad is None for p in med.parameters())  # M is not trained by G's loss


def test_generator_loss_values_on_closed_forms():
    uniform = torch.zeros(2, 3, 5)  # (B, T, V) logits
    sharp = torch.full((2, 3, 5), -1e4)
    sharp[..., 0] = 0.0  # all mass on token 0
    assert cot_loss(uniform, uniform).item() == pytest.approx(0.0, abs=1e-7)
    assert cot_loss(sharp, uniform).item() == pytest.approx(math.log(5), rel=1e-6)
    assert cot_loss(uniform, sharp).item() > 1e3  # G puts mass where M has none


def _sequence_probs(model):
    every = torch.tensor(list(itertools.product(range(V), repeat=T)))  # (27, T)
    return every, model.log_prob(every).exp()  # (27,)


def test_the_mediator_learns_the_mixture_of_oracle_and_generator(task):
    """With G fixed (warm-up only), M's cross-entropy on ½(P̂ + G), P̂ the training data,
    reaches the mixture's entropy: its minimum, attained only at M = ½(P̂ + G)."""
    gen = tiny_generator(task, seed=4, std=1.0)
    trainer = _trainer(task, gen, mediator_warmup=500, mediator_lr=1e-2, mediator_dropout_keep=1.0)
    every, g = _sequence_probs(gen)
    index = {tuple(r.tolist()): i for i, r in enumerate(every)}
    counts = torch.zeros(len(every))
    for r in task.train:
        counts[index[tuple(r.tolist())]] += 1
    mix = 0.5 * (counts / counts.sum() + g)  # (27,)
    entropy = -(mix * mix.log()).sum().item()
    _, m = _sequence_probs(trainer.mediator)
    cross = -(mix * m.log()).sum().item()
    p = task.oracle.log_prob(every).exp()
    assert 0.0 <= cross - entropy < 0.02  # nats per sequence
    assert -(mix * p.log()).sum().item() - entropy > 0.1  # P itself is far from the mixture
    assert -(mix * g.log()).sum().item() - entropy > 0.1  # so is G


def test_warm_up_trains_only_the_mediator_and_from_scratch_reinitialises_g(task):
    gen = tiny_generator(task, std=1.0)
    before = [p.detach().clone() for p in gen.parameters()]
    trainer = _trainer(task, gen, mediator_warmup=5)
    assert all(torch.equal(a, b) for a, b in zip(before, gen.parameters(), strict=True))
    fresh_med = Mediator(V, 64, 64, T, keep=0.5)
    assert trainer.mediator.out.weight.shape == fresh_med.out.weight.shape

    gen = tiny_generator(task, std=1.0)
    _trainer(task, gen, from_scratch=True)
    weights = torch.cat(
        [p.detach().flatten() for n, p in gen.named_parameters() if n != "lstm.bias_hh_l0"]
    )
    assert not torch.equal(weights[: before[0].numel()], before[0].flatten())
    assert weights.std().item() == pytest.approx(0.1, rel=0.2)  # the original's N(0, 0.1²)


def test_a_step_logs_the_kl_and_the_mediators_nll(task):
    trainer = _trainer(task, tiny_generator(task))
    scalars = trainer.step()
    assert set(scalars) == {"train/g_loss", "train/grad_norm", "train/mediator_nll"}
    assert scalars["train/g_loss"] >= 0.0  # a mean KL
    assert trainer.step().keys() == scalars.keys()
    no_m = _trainer(task, tiny_generator(task), mediator_steps=0).step()
    assert "train/mediator_nll" not in no_m
