"""RankGAN: the rank reward and its alignment, the ranker's loss, the scored rollout."""

import pytest
import torch
import torch.nn.functional as F

import methods.rollout as rollout
from methods import METHODS
from methods.base import TrainContext
from methods.config import ConfigError, build
from methods.discriminator import Discriminator
from methods.rankgan import (
    PRESETS,
    Config,
    RankGANTrainer,
    rank_rewards,
    rank_scores,
    ranker_loss,
    reference_direction,
)
from methods.rollout import (
    WindowScorer,
    fast_rollout_rewards,
    fast_rollout_scores,
    reference_rollout_rewards,
    reference_rollout_scores,
)
from tests.conftest import one_token_generator, tiny_generator

V, T = 50, 8


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


def tokens(shape, seed):
    return torch.randint(0, V, shape, generator=rng(seed))


def random_ranker(seed=1):
    d = Discriminator(V, T, 16, (1, 2, 3, 5, 8), (4, 6, 5, 3, 7))
    return d.init_original_(rng(seed))


def rank_score_fn(direction, gamma=1.0):
    return lambda scorer, features: rank_scores(scorer.highway(features), direction, gamma)


def brute_scores(ranker, y, reference, gamma):
    """gamma * sum_j cos(f(y_i), f(u_j)) by the plain forward, one reference at a time."""
    with torch.no_grad():
        h, r = ranker.hidden(ranker.features(y)), ranker.hidden(ranker.features(reference))
        return gamma * sum(F.cosine_similarity(h, r[j : j + 1], dim=1) for j in range(len(r)))


# the smoke preset, smaller still: every trainer test stays around a second
TINY = dict(batch_size=8, rollout_num=2, discriminator_samples=64, d_pretrain_steps=1)


def make_trainer(task, seed=0, **overrides):
    cfg = Config(**(PRESETS["smoke"] | TINY | overrides))
    ctx = TrainContext(task, torch.device("cpu"), rng(seed), seed)
    return RankGANTrainer(cfg, ctx, tiny_generator(task, std=0.5))


def flatten_ranker_(ranker):
    """Every sentence gets the same feature: with a zero embedding each conv sees only its bias."""
    with torch.no_grad():
        ranker.embedding.weight.zero_()


# ----- the reward -----


def test_identical_scores_give_the_uniform_reward_exactly():
    scores, full = torch.full((3, 8, T - 1), 0.7), torch.full((8,), -2.0)  # B = 8
    assert torch.equal(rank_rewards(scores, full, "rank", False), torch.full((8, T), 1 / 8))
    assert torch.equal(rank_rewards(scores, full, "rank", True), torch.zeros(8, T))
    log_rank = rank_rewards(scores, full, "log-rank", False)
    assert torch.allclose(log_rank, torch.full((8, T), -torch.log(torch.tensor(8.0))), atol=1e-6)
    assert rank_rewards(scores, full, "log-rank", True).abs().max() < 1e-6


def test_a_flat_ranker_gives_every_token_the_uniform_reward_through_the_rollout(task):
    """The constant-reward control's update, up to the constant: 1/B at every (b, t)."""
    trainer = make_trainer(task)
    flatten_ranker_(trainer.discriminator)
    x = trainer.generator.sample(8, rng=rng(1))
    q, perf = trainer.rewards(x)
    assert torch.equal(q, torch.full((8, T), 1 / 8)) and perf["perf/rollout_ms"] > 0


def test_rewards_sum_to_one_over_the_comparison_set(task):
    gen, ranker = tiny_generator(task, std=1.0), random_ranker()
    x = gen.sample(6, rng=rng(2))
    with torch.no_grad():
        direction = reference_direction(ranker.hidden(ranker.features(tokens((4, T), 3))))
    scores, full = fast_rollout_scores(gen, ranker, x, 5, rng(4), rank_score_fn(direction, 3.0))
    assert scores.shape == (5, 6, T - 1) and full.shape == (6,)
    per_rollout = torch.softmax(scores, dim=1)  # (N, B, T-1): each (k, t) over the B completions
    assert torch.allclose(per_rollout.sum(dim=1), torch.ones(5, T - 1), atol=1e-6)
    q = rank_rewards(scores, full, "rank", False)  # (B, T)
    assert torch.allclose(q.sum(dim=0), torch.ones(T), atol=1e-6)
    assert q.std() > 0.01  # the rewards are not trivially uniform


def test_the_reward_at_b_t_is_the_mean_softmax_of_that_cells_completions():
    scores, full = torch.randn(4, 5, T - 1, generator=rng(5)), torch.randn(5, generator=rng(6))
    q = rank_rewards(scores, full, "rank", False)
    log_q = rank_rewards(scores, full, "log-rank", False)
    for b in range(5):
        for t in range(T - 1):
            per_k = [scores[k, b, t].exp() / scores[k, :, t].exp().sum() for k in range(4)]
            assert torch.allclose(q[b, t], sum(per_k) / 4, atol=1e-6)
            assert torch.allclose(log_q[b, t], sum(p.log() for p in per_k) / 4, atol=1e-5)
        assert torch.allclose(q[b, -1], full[b].exp() / full.exp().sum(), atol=1e-6)


def test_each_reward_multiplies_its_own_tokens_log_probability(task):
    """A reward one-hot at (b, t) gives the gradient of -log G(y_t^b | y_<t^b) and nothing else:
    the official code's time-major / batch-major mix-up would fail this."""
    trainer = make_trainer(task, g_clip=1e9)  # no clipping: the raw gradient stays in .grad
    trainer.g_opt.step = lambda: None  # keep the parameters where the gradient was taken
    gen = trainer.generator
    x = gen.sample(5, rng=rng(7))
    for b, t in [(0, 0), (3, 2), (4, T - 1), (1, 5)]:
        q = torch.zeros(5, T)
        q[b, t] = 1.0
        trainer.update_generator(x, q)
        got = [p.grad.clone() for p in gen.parameters()]
        gen.zero_grad()
        logp = torch.log_softmax(gen(x), dim=-1)[b, t, x[b, t]]
        expected = torch.autograd.grad(-logp, list(gen.parameters()), allow_unused=True)
        for g, e in zip(got, expected, strict=True):
            assert torch.allclose(g, torch.zeros_like(g) if e is None else e, atol=1e-6)
        assert any(g.abs().max() > 0 for g in got)


# ----- the ranker -----


def test_the_ranker_loss_is_zero_for_a_ranker_that_scores_all_alike():
    ranker = random_ranker()
    flatten_ranker_(ranker)
    x, real = tokens((10, T), 8), torch.tensor([True, False] * 5)
    loss, auc = ranker_loss(ranker, x, real, tokens((4, T), 9), 1.0, None)
    assert loss.abs() < 1e-6 and auc == 0.5
    loss, _ = ranker_loss(ranker, x, real, tokens((4, T), 9), 1.0, rng(1))  # dropout on
    assert loss.abs() < 0.5  # masks differ per row, the features hardly


def test_the_ranker_loss_is_the_official_formula():
    ranker, x, ref = random_ranker(), tokens((6, T), 10), tokens((3, T), 11)
    real = torch.tensor([True, True, False, True, False, False])
    loss, auc = ranker_loss(ranker, x, real, ref, 2.0, None)
    s = brute_scores(ranker, x, ref, 2.0)
    log_rank = s - torch.logsumexp(s, dim=0)
    assert torch.allclose(loss, -(log_rank[real].mean() - log_rank[~real].mean()), atol=1e-5)
    pairs = [(s[i] > s[j]).float() for i in range(6) for j in range(6) if real[i] and not real[j]]
    assert auc == torch.stack(pairs).mean()
    # one class only: its term alone, finite (the official code divides by zero)
    loss, _ = ranker_loss(ranker, x, torch.ones(6, dtype=torch.bool), ref, 2.0, None)
    assert torch.allclose(loss, -log_rank.mean(), atol=1e-5)


def test_ranker_training_ranks_real_above_generated(task):
    trainer = make_trainer(task, discriminator_lr=1e-2, discriminator_samples=128)
    first = trainer.train_discriminator(1, 1)
    last = trainer.train_discriminator(6, 1)
    assert last["train/d_loss"] < first["train/d_loss"] and last["train/d_loss"] < 0
    assert last["train/ranker_auc"] > 0.7


def test_the_window_scorers_highway_is_the_rankers_feature():
    ranker, x = random_ranker(), tokens((7, T), 12)
    with torch.no_grad():
        features = ranker.features(x)
        assert torch.allclose(WindowScorer(ranker).highway(features), ranker.hidden(features))
        h = ranker.hidden(features)
        assert torch.allclose(
            rank_scores(h, reference_direction(h[:3]), 1.5),
            brute_scores(ranker, x, x[:3], 1.5),
            atol=1e-5,
        )


# ----- the scored rollout -----


@pytest.mark.parametrize("chunk", [1024, 6])  # one chunk; chunks of 2 samples (N = 3)
def test_fast_rollout_scores_are_a_brute_force_score_of_its_completions(task, monkeypatch, chunk):
    gen, ranker = tiny_generator(task, std=1.0), random_ranker()
    x, ref = gen.sample(5, rng=rng(13)), tokens((4, T), 14)
    completions = []  # (N*b, T) per (chunk, g), in the loop's order: chunk-major

    def recording(self, *args):
        completions.append(complete(self, *args))
        return completions[-1]

    complete = rollout.StepTables.complete
    monkeypatch.setattr(rollout.StepTables, "complete", recording)
    with torch.no_grad():
        direction = reference_direction(ranker.hidden(ranker.features(ref)))
    scores, full = fast_rollout_scores(
        gen, ranker, x, 3, rng(15), rank_score_fn(direction, 2.0), chunk=chunk
    )
    per_chunk = max(1, chunk // 3)
    calls = iter(completions)
    for lo in range(0, 5, per_chunk):
        rows = range(lo, min(lo + per_chunk, 5))
        for g in range(1, T):
            y = next(calls)  # row k*b + j: completion k of x[rows[j], :g]
            assert torch.equal(y[:, :g], x[list(rows), :g].repeat(3, 1))
            expected = brute_scores(ranker, y, ref, 2.0).view(3, len(rows))
            assert torch.allclose(scores[:, list(rows), g - 1], expected, atol=1e-5)
    assert torch.allclose(full, brute_scores(ranker, x, ref, 2.0), atol=1e-5)


def test_scored_rollouts_with_p_real_reproduce_the_reward_rollouts(task):
    """score = P(real): the same completions (the same random draws), the same numbers."""
    gen, d = tiny_generator(task, std=1.0), random_ranker()
    x = gen.sample(6, rng=rng(16))
    for chunk in (1024, 8):
        r_a, r_b = rng(17), rng(17)
        rewards = fast_rollout_rewards(gen, d, x, 4, r_a, chunk=chunk)
        scores, full = fast_rollout_scores(gen, d, x, 4, r_b, WindowScorer.prob_real, chunk=chunk)
        assert torch.equal(r_a.get_state(), r_b.get_state())
        assert torch.allclose(scores.mean(dim=0), rewards[:, :-1], atol=1e-7, rtol=0)
        assert torch.equal(full, rewards[:, -1])
    r_a, r_b = rng(18), rng(18)
    rewards = reference_rollout_rewards(gen, d, x, 4, r_a)
    scores, full = reference_rollout_scores(gen, d, x, 4, r_b, WindowScorer.prob_real)
    assert torch.equal(r_a.get_state(), r_b.get_state())
    assert torch.allclose(scores.mean(dim=0), rewards[:, :-1], atol=1e-6)
    assert torch.allclose(full, rewards[:, -1], atol=1e-6)


def test_fast_and_reference_scored_rollouts_agree_on_deterministic_completions(task):
    gen, ranker = one_token_generator(task, token=3), random_ranker()
    x = tokens((5, T), 19)
    with torch.no_grad():
        direction = reference_direction(ranker.hidden(ranker.features(tokens((4, T), 20))))
    score = rank_score_fn(direction)
    fast = fast_rollout_scores(gen, ranker, x, 3, rng(21), score)
    ref = reference_rollout_scores(gen, ranker, x, 3, rng(22), score)
    for a, b in zip(fast, ref, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert fast[0].std() > 0.01


# ----- the trainer and its configuration -----


@pytest.mark.parametrize(
    "overrides",
    [{}, dict(reward="log-rank"), dict(uniform_baseline=True), dict(rollout="reference")],
)
def test_step_updates_generator_and_ranker_and_logs_the_rollout_cost(task, overrides):
    trainer = make_trainer(task, **overrides)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    out = trainer.step()
    keys = {"train/g_loss", "train/d_loss", "train/ranker_auc", "train/reward", "perf/rollout_ms"}
    assert keys <= out.keys() and out["perf/completions_per_s"] > 0
    expected = {"rank": 1 / 8, "log-rank": None}[overrides.get("reward", "rank")]
    if overrides.get("uniform_baseline"):
        expected = 0.0
    if expected is not None:  # every column of the rank reward sums to 1 over the batch
        assert out["train/reward"] == pytest.approx(expected, abs=1e-6)
    else:
        assert out["train/reward"] < -torch.log(torch.tensor(8.0)).item() + 1e-6  # Jensen
    for old, new in [(before, trainer.generator), (d_before, trainer.discriminator)]:
        assert any(not torch.equal(a, b) for a, b in zip(old, new.parameters(), strict=True))


def test_the_ranker_is_initialised_as_the_official_code(task):
    official = make_trainer(task, d_pretrain_steps=0).discriminator
    seqgan = make_trainer(task, d_pretrain_steps=0, discriminator_init="seqgan").discriminator
    for layer in [official.embedding, *official.convs]:
        assert all(p.abs().max() <= 0.1 for p in layer.parameters())
    assert seqgan.embedding.weight.abs().max() > 0.5  # SeqGAN's U(-1, 1)
    assert torch.equal(official.highway.weight, seqgan.highway.weight)  # both Glorot, one seed


def test_registry_presets_and_the_paper_schedule():
    spec = METHODS["rankgan"]
    assert spec.config is Config and spec.make_trainer is RankGANTrainer
    for preset in ("smoke", "quick", "paper"):
        build(Config, "rankgan", spec.presets[preset], {})
    paper = build(Config, "rankgan", spec.presets["paper"], {})
    assert (paper.batch_size, paper.updates, paper.d_steps, paper.d_epochs) == (32, 200, 5, 1)
    assert (paper.d_pretrain_steps, paper.d_pretrain_epochs, paper.rollout_num) == (50, 3, 16)
    assert (paper.discriminator_lr, paper.gamma, paper.reference_size) == (1e-4, 1.0, 16)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"discriminator_l2": "0.2"},
            "--rankgan.discriminator-l2=0.2 is not valid: must be 0 (the ranker has no class "
            "layer to regularise)",
        ),
        ({"reward": "log"}, "--rankgan.reward='log' is not valid; choose from rank, log-rank"),
        ({"reference_size": "0"}, "--rankgan.reference-size=0 is not valid: must be > 0"),
    ],
)
def test_bad_values_are_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        build(Config, "rankgan", PRESETS["smoke"], overrides)
    assert str(error.value) == message
