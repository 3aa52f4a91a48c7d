"""The continuous-relaxation GANs: wgan-gp (soft feedback + gradient penalty) and gumbel (RelGAN).

Tiny tasks (V=50, T=8) throughout; the cost on the real task is measured separately
(docs/methods.md, "Measured costs").
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare

from methods import METHODS, critic, gumbel, wgan_gp
from methods.base import PRESET_NAMES, TrainContext
from methods.config import ConfigError, build
from methods.generator import LSTMGenerator, sample_categorical
from oracle.data import Task
from tests.conftest import tiny_task

V, T = 50, 8
MODULES = {"wgan-gp": wgan_gp, "gumbel": gumbel}
TINY = {  # small critics so every test stays fast
    "wgan-gp": dict(batch_size=16, critic_steps=2, critic_emb_dim=16, critic_num_filters=8),
    "gumbel": dict(batch_size=16, critic_steps=2, critic_emb_dim=16, critic_num_filters=8),
}


@pytest.fixture(scope="module")
def task() -> Task:
    return tiny_task(vocab=V, seq_len=T)  # V=50, E=H=8, T=8


def make_generator(seed: int = 0) -> LSTMGenerator:
    return LSTMGenerator(V, 8, 8, T).init_normal_(0.1, torch.Generator().manual_seed(seed))


def make_trainer(name: str, task: Task, seed: int = 0, updates: int = 10):
    module = MODULES[name]
    cfg = module.Config(**TINY[name], updates=updates, eval_every=5)
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(seed), seed)
    return module.METHOD.make_trainer(cfg, ctx, make_generator())


# ----- both methods: gradients, updates, determinism, registry -----
@pytest.mark.parametrize("name", MODULES)
def test_critic_gradient_reaches_every_generator_parameter(task, name):
    trainer = make_trainer(name, task)
    g_loss, _ = trainer.generator_loss()
    g_loss.backward()
    for pname, p in trainer.generator.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODULES)
def test_one_adversarial_step_changes_every_generator_parameter(task, name):
    trainer = make_trainer(name, task)
    before = {n: p.detach().clone() for n, p in trainer.generator.named_parameters()}
    stats = trainer.step()
    for n, p in trainer.generator.named_parameters():
        assert not torch.equal(before[n], p), f"{n} did not change"
    assert {"train/g_loss", "train/d_loss", "train/entropy"} <= stats.keys()
    assert all(math.isfinite(v) for v in stats.values()), stats
    assert 0 < stats["train/entropy"] <= math.log(V) + 1e-4


# what each method's critic_step returns, reduced to its loss
CRITIC_LOSS = {"wgan-gp": lambda out: out["train/d_loss"], "gumbel": lambda out: out}


@pytest.mark.parametrize("name", MODULES)
def test_d_loss_is_the_mean_over_the_steps_critic_updates(task, name):
    """As SeqGAN's: train/d_loss means the same in every method (not the last update's)."""
    trainer = make_trainer(name, task)
    losses, critic_step = [], trainer.critic_step

    def recorded():
        out = critic_step()
        losses.append(CRITIC_LOSS[name](out))
        return out

    trainer.critic_step = recorded
    stats = trainer.step()
    assert len(losses) == 2 and losses[0] != losses[1]  # TINY: 2 critic steps, different losses
    assert stats["train/d_loss"] == pytest.approx((losses[0] + losses[1]) / 2, rel=1e-12)


@pytest.mark.parametrize("name", MODULES)
def test_trainer_is_deterministic_for_a_seed(task, name):
    def params_after_two_steps(seed: int) -> list[torch.Tensor]:
        trainer = make_trainer(name, task, seed=seed)
        trainer.step()
        trainer.step()
        return [p.detach().clone() for p in trainer.generator.parameters()]

    a, b, other = params_after_two_steps(3), params_after_two_steps(3), params_after_two_steps(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, other, strict=True))


@pytest.mark.parametrize("name", MODULES)
def test_registry_entry_and_presets_build_valid_configs(name):
    spec = METHODS[name]
    assert spec is MODULES[name].METHOD and spec.name == name
    assert set(spec.presets) == set(PRESET_NAMES) and spec.presets["paper"] == {}
    for preset in PRESET_NAMES:
        cfg = build(spec.config, name, spec.presets[preset], {})
        assert cfg.updates >= 1 and cfg.eval_every >= 1
        assert cfg.updates // cfg.eval_every <= 15 or preset == "paper"  # quick: <= ~15 evals
    for field in dataclasses.fields(spec.config):
        assert type(field.default) in (int, float, str, bool, tuple), field.name
        assert "; " in field.metadata["help"], f"{field.name}: help text without its source"


def test_cli_overrides_are_typed_and_choices_are_checked():
    cfg = build(gumbel.Config, "gumbel", {}, {"beta_max": "5", "beta_schedule": "lin"})
    assert cfg.beta_max == 5.0 and cfg.beta_schedule == "lin"
    with pytest.raises(ConfigError, match="--gumbel.beta-schedule"):
        build(gumbel.Config, "gumbel", {}, {"beta_schedule": "cosine"})
    with pytest.raises(ConfigError, match="--gumbel.loss"):
        build(gumbel.Config, "gumbel", {}, {"loss": "hinge"})
    cfg = build(wgan_gp.Config, "wgan-gp", {}, {"critic_steps": "3"})
    assert cfg.critic_steps == 3


@pytest.mark.parametrize("name", MODULES)
def test_both_methods_train_the_shared_critic(task, name):
    assert isinstance(make_trainer(name, task).critic, critic.SequenceCNN)


def test_critic_embedding_is_one_function_for_one_hot_and_soft_rows():
    cnn = critic.SequenceCNN(V, 16, 8, (2, 3, 4, 5)).init_(torch.Generator().manual_seed(0))
    tokens = torch.randint(0, V, (4, T), generator=torch.Generator().manual_seed(1))
    one_hot = F.one_hot(tokens, V).float()  # (B, T, V)
    torch.testing.assert_close(cnn.embed_tokens(tokens), cnn.embed(one_hot))
    torch.testing.assert_close(cnn.score(cnn.embed_tokens(tokens)), cnn(one_hot))
    soft = torch.softmax(torch.randn(4, T, V), dim=-1)  # (B, T, V): the expected embedding
    torch.testing.assert_close(cnn.embed(soft), soft @ cnn.embed_tokens(torch.arange(V)))


# ----- wgan-gp -----
def test_gradient_penalty_of_a_linear_critic_is_its_closed_form():
    rng = torch.Generator().manual_seed(0)
    real = F.one_hot(torch.randint(0, V, (16, T), generator=rng), V).float()  # (B, T, V)
    fake = torch.softmax(torch.randn(16, T, V, generator=rng), dim=-1)  # (B, T, V)
    w = torch.randn(T, V, generator=rng)  # critic(x) = <w, x>: its input gradient is w everywhere
    lam = 10.0
    gp = wgan_gp.gradient_penalty(lambda x: (x * w).sum(dim=(1, 2)), real, fake, rng, lam)
    torch.testing.assert_close(gp, lam * (w.norm() - 1) ** 2)
    unit = w / w.norm()
    gp = wgan_gp.gradient_penalty(lambda x: (x * unit).sum(dim=(1, 2)), real, fake, rng, lam)
    assert gp.item() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_is_taken_per_sample_at_random_interpolates():
    real = F.one_hot(torch.randint(0, V, (8, T)), V).float()  # (B, T, V)
    fake = torch.softmax(torch.randn(8, T, V), dim=-1)  # (B, T, V)
    # critic(x) = |x|^2 / 2 per sequence: the gradient at an interpolate is the interpolate itself
    gp = wgan_gp.gradient_penalty(
        lambda x: 0.5 * x.square().sum(dim=(1, 2)),
        real,
        fake,
        torch.Generator().manual_seed(5),
        2.0,
    )
    a = torch.rand(8, 1, 1, generator=torch.Generator().manual_seed(5))  # the same draws
    x_hat = real + a * (fake - real)  # (B, T, V)
    torch.testing.assert_close(gp, 2.0 * (x_hat.flatten(1).norm(dim=1) - 1).square().mean())


def test_gradient_penalty_in_embedding_space_equals_the_input_space_one():
    cnn = critic.SequenceCNN(V, 16, 8, (2, 3, 4, 5)).init_(torch.Generator().manual_seed(0))
    tokens = torch.randint(0, V, (8, T), generator=torch.Generator().manual_seed(1))
    fake = torch.softmax(3 * torch.randn(8, T, V), dim=-1)  # (B, T, V)
    gp_input = wgan_gp.gradient_penalty(
        cnn, F.one_hot(tokens, V).float(), fake, torch.Generator().manual_seed(2), 10.0
    )
    w = cnn.embedding.weight  # (E, V)
    gp_embedded = wgan_gp.gradient_penalty(
        cnn.score, cnn.embed_tokens(tokens), cnn.embed(fake), torch.Generator().manual_seed(2),
        10.0, metric=w @ w.T,
    )  # fmt: skip
    torch.testing.assert_close(gp_embedded, gp_input, rtol=1e-4, atol=1e-6)
    assert gp_input.item() > 1e-3  # not trivially zero


FEEDBACKS = ("soft", "sampled-first", "gumbel-soft")


def make_wgan_trainer(task: Task, feedback: str, seed: int = 0):
    cfg = wgan_gp.Config(**TINY["wgan-gp"], updates=10, eval_every=5, feedback=feedback)
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(seed), seed)
    return wgan_gp.METHOD.make_trainer(cfg, ctx, make_generator())


def first_step(gen: LSTMGenerator, n: int):
    """(p_1 (n, V), the state after it): the same for every row (zero state, fixed start token)."""
    logits, state = gen.step(gen.start_tokens(n), gen.initial_state(n))  # (n, V)
    return torch.softmax(logits, dim=-1), state


def distinct_rows(x: torch.Tensor) -> int:
    return torch.unique(x.flatten(1), dim=0).shape[0]


def test_default_feedback_is_sampled_first_and_choices_are_checked():
    assert wgan_gp.Config().feedback == "sampled-first"
    assert set(wgan_gp.FEEDBACK) == set(FEEDBACKS)
    with pytest.raises(ConfigError, match="--wgan-gp.feedback"):
        build(wgan_gp.Config, "wgan-gp", {}, {"feedback": "hard"})
    with pytest.raises(ConfigError, match="--wgan-gp.tau-feedback"):
        build(wgan_gp.Config, "wgan-gp", {}, {"tau_feedback": "0"})


def test_soft_feedback_is_degenerate_every_fake_row_is_the_same():
    gen = make_generator()
    with torch.no_grad():
        probs = wgan_gp.soft_rollout(gen, 5, torch.Generator().manual_seed(0), "soft")  # (B, T, V)
        p1, state = first_step(gen, 5)
        logits, _ = gen.step_embedded(probs[:, 0] @ gen.embedding.weight, state)  # (B, V)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(5, T))
    torch.testing.assert_close(probs[:, 0], p1)
    torch.testing.assert_close(probs[:, 1], torch.softmax(logits, dim=-1))  # expected embedding
    torch.testing.assert_close(probs, probs[:1].expand_as(probs))  # the critic sees one point


def test_sampled_first_feeds_back_a_draw_from_p1_then_the_expected_embedding():
    gen, n = make_generator(), 16
    with torch.no_grad():
        probs = wgan_gp.soft_rollout(gen, n, torch.Generator().manual_seed(7), "sampled-first")
        p1, state = first_step(gen, n)
        tokens = sample_categorical(p1, torch.Generator().manual_seed(7))  # replay the draw (n,)
        logits2, state = gen.step(tokens, state)  # (n, V): hard feedback of the drawn token
        logits3, _ = gen.step_embedded(probs[:, 1] @ gen.embedding.weight, state)  # (n, V)
    torch.testing.assert_close(probs[:, 0], p1)  # the critic's first row is the softmax p_1
    torch.testing.assert_close(probs[:, 1], torch.softmax(logits2, dim=-1))
    torch.testing.assert_close(probs[:, 2], torch.softmax(logits3, dim=-1))
    # rows differ exactly by their first token: one distinct fake row per distinct draw
    assert distinct_rows(probs) == distinct_rows(tokens[:, None]) > 1


def test_gumbel_soft_feeds_back_a_noisy_softmax_and_shows_the_critic_p_t():
    gen, n, tau = make_generator(), 6, 0.5
    with torch.no_grad():
        probs = wgan_gp.soft_rollout(gen, n, torch.Generator().manual_seed(3), "gumbel-soft", tau)
        p1, state = first_step(gen, n)
        g = critic.gumbel_noise((n, V), torch.Generator().manual_seed(3), torch.device("cpu"))
        x = torch.softmax((p1.log() + g) / tau, dim=-1) @ gen.embedding.weight  # (n, E)
        logits2, _ = gen.step_embedded(x, state)  # (n, V)
    torch.testing.assert_close(probs[:, 0], p1)
    torch.testing.assert_close(probs[:, 1], torch.softmax(logits2, dim=-1))
    assert distinct_rows(probs) == n  # fresh noise per row and step: every fake row differs


@pytest.mark.parametrize("feedback", FEEDBACKS)
def test_every_feedback_passes_gradient_to_every_generator_parameter(task, feedback):
    trainer = make_wgan_trainer(task, feedback)
    g_loss, _ = trainer.generator_loss()
    g_loss.backward()
    for pname, p in trainer.generator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    # the fed-back vectors are dense mixtures of embeddings, so every row of E gets gradient
    assert (trainer.generator.embedding.weight.grad.abs().sum(dim=1) > 0).all()


@pytest.mark.parametrize("feedback", FEEDBACKS)
def test_every_feedback_is_deterministic_for_a_seed(task, feedback):
    def params_after_a_step(seed: int) -> list[torch.Tensor]:
        trainer = make_wgan_trainer(task, feedback, seed=seed)
        trainer.step()
        return [p.detach().clone() for p in trainer.generator.parameters()]

    a, b, other = params_after_a_step(3), params_after_a_step(3), params_after_a_step(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, other, strict=True))


def test_entropy_of_uniform_rows_is_log_v_and_of_one_hot_rows_zero():
    uniform = torch.full((2, T, V), 1.0 / V)
    one_hot = F.one_hot(torch.zeros(2, T, dtype=torch.long), V).float()
    assert wgan_gp.entropy(uniform).item() == pytest.approx(math.log(V), rel=1e-6)
    assert wgan_gp.entropy(one_hot).item() == 0
    assert gumbel.entropy(torch.zeros(2, T, V)).item() == pytest.approx(math.log(V), rel=1e-6)
    assert gumbel.entropy(1e4 * one_hot).item() == pytest.approx(0, abs=1e-6)


# ----- gumbel -----
@pytest.mark.parametrize(
    ("schedule", "n", "expected"),
    [
        ("exp", 100, {0: 1.0, 50: 10.0, 99: 100 ** (99 / 100)}),  # beta_max^(i/N)
        ("lin", 101, {0: 1.0, 50: 50.5, 100: 100.0}),  # 1 + i/(N-1) (beta_max - 1)
    ],
)
def test_beta_schedule_first_middle_last(schedule, n, expected):
    for i, beta in expected.items():
        assert gumbel.beta_at(i, n, 100.0, schedule) == pytest.approx(beta, rel=1e-12)


def test_trainer_reports_beta_on_its_schedule(task):
    trainer = make_trainer("gumbel", task, updates=4)
    betas = [trainer.step()["train/beta"] for _ in range(2)]
    assert betas == pytest.approx([1.0, 100 ** (1 / 4)])


def test_gumbel_max_frequencies_match_the_softmax():
    logits = torch.randn(10, generator=torch.Generator().manual_seed(0)) * 1.5  # (K,)
    n = 20_000
    noise = critic.gumbel_noise((n, 10), torch.Generator().manual_seed(1), torch.device("cpu"))
    counts = torch.bincount((logits + noise).argmax(dim=-1), minlength=10).double()
    probs = torch.softmax(logits.double(), dim=0)
    assert chisquare(counts.numpy(), (probs * n).numpy()).pvalue > 0.001
    wrong = torch.softmax(2 * logits.double(), dim=0)  # the test has power against a colder law
    assert chisquare(counts.numpy(), (wrong * n).numpy()).pvalue < 1e-6
    assert torch.isfinite(noise).all()


def test_gumbel_rollout_feeds_back_the_argmax_of_logits_plus_noise():
    gen, beta = make_generator(), 3.0
    tokens, relaxed, logits = gumbel.gumbel_rollout(gen, 32, beta, torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(logits, gen(tokens))  # teacher-forced on the fed-back tokens
    rng = torch.Generator().manual_seed(9)  # replay the noise, drawn once per step
    noise = torch.stack([critic.gumbel_noise((32, V), rng, torch.device("cpu")) for _ in range(T)])
    perturbed = logits + noise.transpose(0, 1)  # (B, T, V)
    assert torch.equal(tokens, perturbed.argmax(dim=-1))
    torch.testing.assert_close(relaxed, torch.softmax(beta * perturbed, dim=-1))
    assert relaxed.requires_grad  # the critic's input carries the gradient to the logits


def test_gan_losses_at_equal_scores_and_relativistic_pairing():
    zeros = torch.zeros(4)
    for kind in ("rsgan", "standard"):
        d_loss, g_loss = gumbel.gan_losses(kind, zeros, zeros)
        assert g_loss.item() == pytest.approx(math.log(2))
    d_loss, g_loss = gumbel.gan_losses("rsgan", torch.tensor([2.0]), torch.tensor([1.0]))
    assert d_loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))  # BCE(D(r) - D(f), 1)
    assert g_loss.item() == pytest.approx(math.log1p(math.exp(1.0)))  # BCE(D(f) - D(r), 1)


def test_real_token_embedding_backward_is_reproducible_with_threads():
    """embed_tokens == embed(one_hot) and its weight gradient is the same on every call. With
    torch's 2+ CPU threads, the backward of advanced indexing (weight.T[tokens]) accumulated in
    thread order and differed in the last bits from call to call: runs were not bit-identical."""
    net = critic.SequenceCNN(5000, 32, 8, (2, 3, 4, 5)).init_(torch.Generator().manual_seed(0))
    tokens = torch.randint(0, 5000, (64, 20), generator=torch.Generator().manual_seed(1))
    grad_out = torch.randn(64, 20, 32, generator=torch.Generator().manual_seed(2))
    one_hot = F.one_hot(tokens, 5000).float()
    assert torch.allclose(net.embed_tokens(tokens), net.embed(one_hot), atol=1e-6)
    grads = []
    for _ in range(50):
        net.zero_grad()
        net.embed_tokens(tokens).backward(grad_out)
        grads.append(net.embedding.weight.grad.clone())
    assert all(torch.equal(g, grads[0]) for g in grads)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("widths", [(2, 9), (9, 10)])
def test_critic_widths_above_the_sequence_length_are_refused_as_seqgan_does(task, name, widths):
    """A width > T is a config error naming the flag (T = 8 here), not silently dropped."""
    cfg = MODULES[name].Config(**TINY[name] | {"critic_filter_sizes": widths})
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(0), 0)
    with pytest.raises(ConfigError) as error:
        MODULES[name].METHOD.make_trainer(cfg, ctx, make_generator())
    text = ",".join(map(str, widths))
    expected = f"--{name}.critic-filter-sizes={text!r} is not valid: widths must be <= T = 8"
    assert str(error.value) == expected


@pytest.mark.parametrize("name", MODULES)
def test_critic_widths_up_to_the_sequence_length_build_one_conv_each(task, name):
    cfg = MODULES[name].Config(**TINY[name] | {"critic_filter_sizes": (1, 8)})
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(0), 0)
    trainer = MODULES[name].METHOD.make_trainer(cfg, ctx, make_generator())
    assert [conv.kernel_size for conv in trainer.critic.convs] == [(1,), (8,)]
