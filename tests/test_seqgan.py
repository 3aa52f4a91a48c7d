"""SeqGAN: the fast rollout against the original's loops, exact D shortcuts, the trainers."""

import dataclasses
import itertools

import pytest
import torch

from methods import METHODS
from methods.base import TrainContext
from methods.config import ConfigError, build, flatten
from methods.discriminator import Discriminator
from methods.generator import sample_blocked, sample_categorical
from methods.rollout import (
    StepTables,
    WindowScorer,
    fast_rollout_rewards,
    reference_rollout_rewards,
)
from methods.seqgan import PRESETS, Config, ConstConfig, ConstRewardTrainer, SeqGANTrainer
from tests.conftest import one_token_generator, tiny_generator

V, T = 50, 8
ROLLOUTS = {"fast": fast_rollout_rewards, "reference": reference_rollout_rewards}


def random_discriminator(seed: int = 1, sharpness: float = 6.0) -> Discriminator:
    """A random D over V=50, T=8 with several widths; the output layer is scaled up so its
    rewards spread over (0, 1) instead of sitting near 1/2."""
    d = Discriminator(V, T, 16, (1, 2, 3, 5, 8), (4, 6, 5, 3, 7))
    d.init_original_(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        d.out.weight.mul_(sharpness)
    return d


def tokens(shape, seed, low=0):
    return torch.randint(low, V, shape, generator=torch.Generator().manual_seed(seed))


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


# ----- exact restructurings: D via lookup tables and prefix reuse, G via step tables -----


def test_window_scorer_features_equal_the_plain_forward():
    d = random_discriminator()
    x = tokens((5, T), seed=2)  # 5 samples
    n = 3
    with torch.no_grad():
        scorer = WindowScorer(d)
        prefix = scorer.prefix_features(x)
        full = torch.cat([p[T] for p in prefix], dim=1)
        assert torch.allclose(full, d.features(x), atol=1e-5)
        assert torch.allclose(scorer.prob_real(full), d.prob_real(x), atol=1e-6)
        for g in range(1, T):
            suffix = tokens((n * 5, T), seed=10 + g)
            y = torch.cat([x[:, :g].repeat(n, 1), suffix[:, g:]], dim=1)  # row i*5 + j
            feats = scorer.completion_features(y, g, [p[g] for p in prefix])
            assert torch.allclose(feats, d.features(y), atol=1e-5), g
    # the prefix maxima are not trivially zero: windows inside the prefix matter
    assert (prefix[0][T - 1] > 0).any()


@pytest.mark.parametrize("readout_scale, shifted", [(1.0, False), (7.0, True)])
def test_step_tables_equal_the_generator_step(task, readout_scale, shifted):
    """Small read-out weights: raw exp2 of the logits; a bound over 100 (log2 units): each row
    shifted to max 0 first. Both give the generator's softmax."""
    gen = tiny_generator(task, std=1.0)
    with torch.no_grad():  # bound 16 -> 114 log2 units; the LSTM step is untouched
        gen.out.weight.mul_(readout_scale)
        gen.out.bias.mul_(readout_scale)
    tables = StepTables(gen)  # works outside no_grad too: the tables are plain tensors
    assert tables.shift_rows == shifted
    toks = tokens((7,), seed=3)
    h, c = torch.randn(2, 7, 8, generator=rng(4)) * 0.5
    with torch.no_grad():
        logits, (h2, c2) = gen.step(toks, (h[None], c[None]))
    h3, c3 = tables.step(toks, h, c)
    w = tables.weights(h3, out=torch.empty(7, V))
    assert torch.allclose(h3, h2[0], atol=1e-6) and torch.allclose(c3, c2[0], atol=1e-6)
    probs = w / w.sum(dim=1, keepdim=True)
    assert torch.allclose(probs, torch.softmax(logits, dim=-1), atol=1e-6)
    assert w.amax(dim=1).eq(1.0).all() == shifted


def test_blocked_sampler_draws_what_the_one_level_inverse_cdf_draws():
    probs = torch.softmax(torch.randn(4000, V, generator=rng(1)) * 2, dim=-1)
    probs[:, 7] = 0.0  # a token without mass is never drawn
    a = sample_blocked(probs * 3.0, 10, rng(5))  # unnormalised weights are fine
    b = sample_categorical(probs, rng(5))  # the same uniforms: the same tokens
    assert (a == b).float().mean() > 0.999
    assert (a != 7).all() and a.min() >= 0 and a.max() < V
    # one-hot rows: always the hot token, whatever the uniform
    hot = torch.arange(30) % V
    assert (sample_blocked(torch.nn.functional.one_hot(hot, V).float(), 10, rng(2)) == hot).all()


# ----- fast and reference rollouts compute the same estimator -----


@pytest.mark.parametrize("name", ROLLOUTS)
def test_deterministic_completions_give_exact_rewards(task, name):
    gen, d = one_token_generator(task, token=3), random_discriminator()
    x = tokens((5, T), seed=4)
    rewards = ROLLOUTS[name](gen, d, x, 4, rng())
    with torch.no_grad():
        for t in range(T - 1):
            y = torch.cat([x[:, : t + 1], torch.full((5, T - t - 1), 3)], dim=1)
            assert torch.allclose(rewards[:, t], d.prob_real(y), atol=1e-5), t
        assert torch.allclose(rewards[:, T - 1], d.prob_real(x), atol=1e-5)
    assert rewards.std() > 0.05  # the check above compares values that differ


def exact_q(gen, d, x, g):
    """Q for prefix length g, exactly: every completion of the last T - g tokens, weighted."""
    tails = torch.tensor(list(itertools.product(range(V), repeat=T - g)))  # (V^(T-g), T-g)
    out = []
    with torch.no_grad():
        for row in x:
            y = torch.cat([row[:g].expand(len(tails), g), tails], dim=1)
            p_tail = torch.softmax(gen.token_log_probs(y)[:, g:].sum(dim=1), dim=0)
            out.append((p_tail * d.prob_real(y)).sum())
    return torch.stack(out)


def test_rollouts_agree_in_mean_and_with_the_exact_q(task):
    gen, d = tiny_generator(task, std=1.0), random_discriminator()
    x = gen.sample(4, rng=rng(7))
    calls = 20
    runs = {
        name: torch.stack([fn(gen, d, x, 16, rng(100 + k)) for k in range(calls)])
        for name, fn in ROLLOUTS.items()
    }  # (calls, B, T) each
    mean = {k: r.mean(dim=0) for k, r in runs.items()}
    se = {k: r.std(dim=0) / calls**0.5 for k, r in runs.items()}  # standard error of the mean
    both = (se["fast"] ** 2 + se["reference"] ** 2).sqrt()
    assert ((mean["fast"] - mean["reference"]).abs() <= 4 * both + 1e-6).all()
    assert torch.allclose(runs["fast"][..., -1], runs["reference"][..., -1], atol=1e-6)  # D(x)
    # the last two rollout positions against the exact expectation (V and V^2 completions)
    for g in (T - 1, T - 2):
        q = exact_q(gen, d, x, g)
        for name in ROLLOUTS:
            assert ((mean[name][:, g - 1] - q).abs() <= 4 * se[name][:, g - 1] + 1e-6).all()
    # power: the sampling error is small next to how much Q differs between cells
    assert both.max() < 0.2 * mean["fast"][:, :-1].std()


def count_discriminator(a: float = 1.0, b: float = -2.0) -> Discriminator:
    """P(real) = sigmoid(a * (number of token-0s in the sequence) + b), built from D's own parts:
    1-d embedding = [token == 0], one width-T filter of ones (a count), a highway whose gate is
    shut (it passes its input), and an output layer reading the count."""
    d = Discriminator(V, T, 1, (T,), (1,))
    with torch.no_grad():
        for p in d.parameters():
            p.zero_()
        d.embedding.weight[0] = 1.0
        d.convs[0].weight.fill_(1.0)
        d.highway.bias[1] = -1000.0  # gate half: sigmoid(-1000) = 0
        d.out.weight[1, 0], d.out.bias[1] = a, b
    return d


@pytest.mark.parametrize("name", ROLLOUTS)
def test_each_sample_is_rewarded_for_its_own_prefix(task, name):
    gen = tiny_generator(task, std=1.0)
    with torch.no_grad():
        gen.out.bias[0] = -1000.0  # completions never contain token 0: Q depends on the prefix
    x = tokens((6, T), seed=9, low=1)
    for i, positions in enumerate([[0], [1, 2], [], [0, 3, 4, 7], [5], [2, 6]]):
        x[i, positions] = 0  # a different pattern of 0s in every sample
    rewards = ROLLOUTS[name](gen, count_discriminator(), x, 4, rng(3))
    counts = (x == 0).float().cumsum(dim=1)  # (B, T): zeros within x[:, :t+1]
    assert torch.allclose(rewards, torch.sigmoid(counts - 2.0), atol=1e-5)


# ----- the trainers -----


# the smoke preset, smaller still: every trainer test stays around a second
TINY = dict(batch_size=8, rollout_num=2, discriminator_samples=64, d_pretrain_steps=1)


def make_trainer(task, cls=SeqGANTrainer, config=Config, seed=0, **overrides):
    cfg = config(**(PRESETS["smoke"] | TINY | overrides))
    ctx = TrainContext(task, torch.device("cpu"), rng(seed), seed)
    return cls(cfg, ctx, tiny_generator(task, std=0.5))


def test_step_updates_generator_and_reports_rollout_cost(task):
    trainer = make_trainer(task)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    out = trainer.step()
    assert {"train/g_loss", "train/d_loss", "train/d_acc", "perf/rollout_ms"} <= out.keys()
    assert out["perf/rollout_ms"] > 0 and out["perf/completions_per_s"] > 0
    assert 0.0 <= out["train/d_acc"] <= 1.0 and 0.0 < out["train/reward"] < 1.0
    assert any(
        not torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, b)
        for a, b in zip(d_before, trainer.discriminator.parameters(), strict=True)
    )


def test_policy_gradient_raises_the_probability_of_the_rewarded_token(task):
    trainer = make_trainer(task)
    gen = trainer.generator

    def probs():  # mean next-token distribution over the training set's positions
        with torch.no_grad():
            return torch.softmax(gen(task.train[:64]), dim=-1).mean(dim=(0, 1))  # (V,)

    start = probs()
    k = int(start.argmax())  # a token sampled often enough for the gradient to see it
    for _ in range(8):
        x = gen.sample(32, rng=trainer.rng)
        trainer.update_generator(x, (x == k).float())  # reward 1 for token k, 0 otherwise
    assert probs()[k] > 1.5 * start[k]


def test_const_control_makes_no_rollout_and_still_trains_d(task):
    trainer = make_trainer(task, ConstRewardTrainer, ConstConfig, constant_reward=2.0)
    calls = []
    trainer.discriminator.out.register_forward_hook(lambda *a: calls.append(1))
    x = trainer.generator.sample(8, rng=trainer.rng)
    q, perf = trainer.rewards(x)
    assert torch.equal(q, torch.full((8, T), 2.0)) and perf == {} and calls == []
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    out = trainer.step()
    assert "perf/rollout_ms" not in out and "perf/completions_per_s" not in out
    assert out["train/reward"] == 2.0 and "train/d_loss" in out
    assert any(
        not torch.equal(a, b)
        for a, b in zip(d_before, trainer.discriminator.parameters(), strict=True)
    )
    # the same hook does see the real trainer's rollout call D
    real = make_trainer(task)
    real.discriminator.out.register_forward_hook(lambda *a: calls.append(1))
    real.rewards(x)
    assert calls


def test_training_is_reproducible_for_a_seed(task):
    a, b = make_trainer(task, seed=3), make_trainer(task, seed=3)
    timeless = [{k: v for k, v in t.step().items() if not k.startswith("perf/")} for t in (a, b)]
    assert timeless[0] == timeless[1]
    pairs = zip(a.generator.parameters(), b.generator.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)


def test_trainer_can_use_the_reference_rollout(task):
    out = make_trainer(task, rollout="reference").step()
    assert 0.0 < out["train/reward"] < 1.0 and out["perf/rollout_ms"] > 0


# ----- configuration -----


def test_registry_presets_and_the_paper_discriminator():
    assert METHODS["seqgan"].config is Config and METHODS["seqgan-const"].config is ConstConfig
    for name in ("seqgan", "seqgan-const"):
        for preset in ("smoke", "quick", "paper"):
            build(METHODS[name].config, name, METHODS[name].presets[preset], {})
    cfg = Config()
    sizes, maps = cfg.discriminator_filter_sizes, cfg.discriminator_num_filters
    d = Discriminator(5000, 20, cfg.discriminator_emb_dim, sizes, maps)
    assert sum(p.numel() for p in d.parameters()) == 7_045_402  # seqgan-original.md §4
    assert dataclasses.fields(ConstConfig)[-1].name == "constant_reward"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(discriminator_filter_sizes="1,x"),
            "--seqgan.discriminator-filter-sizes='1,x' is not valid: must be a non-empty comma "
            "list of integers > 0",
        ),
        (
            dict(discriminator_num_filters="4,0"),
            "--seqgan.discriminator-num-filters='4,0' is not valid: must be a non-empty comma "
            "list of integers > 0",
        ),
        (
            dict(discriminator_num_filters="4,4,4"),
            "discriminator-filter-sizes '2,3' has 2 widths but discriminator-num-filters "
            "'4,4,4' has 3 counts; give one per width",
        ),
    ],
)
def test_bad_discriminator_lists_are_config_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        build(Config, "seqgan", PRESETS["smoke"], overrides)
    assert str(error.value) == message


def test_discriminator_widths_above_the_sequence_length_are_config_errors(task):
    with pytest.raises(ConfigError) as error:
        make_trainer(task, discriminator_filter_sizes=(2, 9))
    assert str(error.value) == (
        "--seqgan.discriminator-filter-sizes='2,9' is not valid: widths must be <= T = 8"
    )


def test_the_const_control_names_its_own_flags(task):
    with pytest.raises(ConfigError) as error:
        make_trainer(task, ConstRewardTrainer, ConstConfig, discriminator_filter_sizes=(2, 9))
    assert str(error.value) == (
        "--seqgan-const.discriminator-filter-sizes='2,9' is not valid: widths must be <= T = 8"
    )


def test_filter_lists_parse_to_tuples_and_mismatched_lengths_are_refused():
    overrides = {"discriminator_filter_sizes": "2, 3", "discriminator_num_filters": "8,16"}
    cfg = build(Config, "seqgan", {}, overrides)
    assert (cfg.discriminator_filter_sizes, cfg.discriminator_num_filters) == ((2, 3), (8, 16))
    assert flatten(cfg, "seqgan")["seqgan.discriminator_filter_sizes"] == "2,3"  # MLflow param
    with pytest.raises(ConfigError) as error:  # also when the dataclass is built directly
        Config(discriminator_filter_sizes=(2, 3), discriminator_num_filters=(8,))
    assert str(error.value) == (
        "discriminator-filter-sizes '2,3' has 2 widths but discriminator-num-filters '8' has 1 "
        "counts; give one per width"
    )
