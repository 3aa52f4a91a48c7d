"""The oracle discriminator and the controls around it, checked where everything is enumerable.

V = 3, T = 3: 27 sequences, so log P and log G of every sequence, KL(G||P) and its gradient are
exact sums. Checked: D*'s logit is log P - log G; REINFORCE on that logit (through the real
`rloo-oracle-d` trainer, every batch of 2 enumerated) is exactly the gradient of -KL(G||P);
MaliGAN's weights become P/G normalised; the oracle rollout's Q is D*'s conditional mean.
Also: the shuffled control permutes each position's rewards, the noise control matches the
advantages' per-position scale, the 10x discriminator makes 10x the D updates, RLOO's baseline
for sample i ignores sample i, and D's held-out check changes no training draw.
"""

import dataclasses
import itertools

import pytest
import torch

from methods import METHODS
from methods.base import TrainContext
from methods.config import build
from methods.oracle_discriminator import oracle_rollout_rewards
from methods.pg import PGTrainer
from methods.policy import PolicyTrainer
from methods.rloo import grpo, leave_one_out_advantage, reinforce_pp
from methods.seqgan import shuffle_positions
from methods.seqgan_baseline import matched_noise
from oracle.data import Task
from oracle.model import random_oracle
from tests.conftest import tiny_generator, tiny_task

V, T = 3, 3


@pytest.fixture(scope="module")
def tiny():
    """A V=3, T=3 oracle P (task), a generator G far from it, every sequence and both log-probs."""
    oracle = random_oracle(4, vocab_size=V, emb_dim=4, hidden_dim=4, seq_len=T)
    task = Task(oracle, "enum", torch.zeros(8, T, dtype=torch.long), torch.zeros(8, T).long())
    gen = tiny_generator(task, seed=1, std=0.5)
    every = torch.tensor(list(itertools.product(range(V), repeat=T)))  # (27, T)
    return task, gen, every, oracle.log_prob(every), gen.log_prob(every)


def _trainer(name, task, gen, **preset):
    spec = METHODS[name]
    cfg = build(spec.config, name, spec.presets["smoke"] | preset, {})
    ctx = TrainContext(task, torch.device("cpu"), torch.Generator().manual_seed(0), 0)
    return spec.make_trainer(cfg, ctx, gen)


def test_the_enumeration_is_complete(tiny):
    _, _, _, logp, logg = tiny
    assert torch.allclose(logp.exp().sum(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(logg.exp().sum(), torch.tensor(1.0), atol=1e-5)


@pytest.mark.parametrize("name", ["seqgan-oracle-d", "maligan-oracle-d", "rloo-oracle-d"])
def test_the_oracle_logit_is_log_p_minus_log_g(tiny, name):
    task, gen, every, logp, logg = tiny
    trainer = _trainer(name, task, gen)
    assert torch.allclose(trainer.sequence_logit(every), logp - logg, atol=1e-5)


def test_reinforce_on_the_oracle_logit_is_the_exact_gradient_of_reverse_kl(tiny):
    """E over batches of 2 of the trainer's update direction sum_b A_b grad log G(y_b) equals
    2 grad(-KL(G||P)) exactly: every one of the 27^2 batches enumerated with its probability."""
    task, gen, every, logp, logg = tiny
    trainer = _trainer("rloo-oracle-d", task, gen, batch_size=2)
    coef = torch.zeros(len(every))  # c(y): the expected weight of grad log G(y)
    for i, j in itertools.product(range(len(every)), repeat=2):
        q, _ = trainer.rewards(every[[i, j]])  # (2, T): the sequence advantage on every token
        weight = (logg[i] + logg[j]).exp()
        coef[i] += weight * q[0, 0]
        coef[j] += weight * q[1, 0]
    gen.zero_grad()
    (coef * gen.token_log_probs(every).sum(dim=1)).sum().backward()
    estimated = [p.grad.clone() for p in gen.parameters()]

    gen.zero_grad()
    logg_live = gen.token_log_probs(every).sum(dim=1)  # (27,) with gradient
    kl = (logg_live.exp() * (logg_live - logp)).sum()
    (-2 * kl).backward()
    exact = [p.grad.clone() for p in gen.parameters()]
    assert kl.item() > 0.1  # G is far from P: the gradient is not trivially 0
    for a, b in zip(estimated, exact, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_maligan_with_the_oracle_d_has_the_exact_importance_weights(tiny):
    task, gen, every, logp, logg = tiny
    trainer = _trainer("maligan-oracle-d", task, gen)
    batch = every[[0, 5, 5, 13, 26, 9]]  # a batch with a repeated sequence
    q, scalars = trainer.rewards(batch)
    ratio = (logp - logg).exp()[[0, 5, 5, 13, 26, 9]]  # P/G
    assert torch.allclose(q[:, 0] + 1 / len(batch), ratio / ratio.sum(), atol=1e-6)
    assert scalars["train/max_weight"] == pytest.approx((ratio / ratio.sum()).max().item())


def test_the_oracle_rollout_is_the_conditional_mean_of_d_star(tiny):
    """Q[b, g-1] = E[D*(Y) | Y_{1:g} = x_{1:g}], Y completed by G: exact by enumeration, within
    4.5 standard errors of 4,000 completions; Q[:, T-1] = D*(x) exactly."""
    task, gen, every, logp, logg = tiny
    d_star = torch.sigmoid(logp - logg)  # (27,)
    x = every[[1, 11, 22]]  # (3, T)
    n = 4000
    q = oracle_rollout_rewards(gen, task.oracle, x, n, torch.Generator().manual_seed(5), chunk=n)
    index = {tuple(y): k for k, y in enumerate(every.tolist())}
    for b, row in enumerate(x.tolist()):
        assert q[b, -1].item() == pytest.approx(d_star[index[tuple(row)]].item(), abs=1e-5)
        for g in range(1, T):
            same = [k for k, y in enumerate(every.tolist()) if y[:g] == row[:g]]
            cond = (logg[same] - torch.logsumexp(logg[same], 0)).exp()  # G(y | prefix)
            mean = (cond * d_star[same]).sum()
            se = ((cond * (d_star[same] - mean) ** 2).sum() / n).sqrt()
            assert abs(q[b, g - 1] - mean) < 4.5 * se + 1e-6, (b, g)


def test_shuffled_rewards_permute_each_position_and_cut_the_link():
    q = torch.rand(64, 20, generator=torch.Generator().manual_seed(0))
    s = shuffle_positions(q, torch.Generator().manual_seed(1))
    assert torch.equal(s.sort(dim=0).values, q.sort(dim=0).values)  # same multiset per position
    assert (s != q).float().mean() > 0.9  # almost no reward stays with its own sequence


def test_the_shuffled_trainer_updates_with_a_permutation_of_its_rollout_rewards(task):
    trainer = _trainer("seqgan-shuffled", task, tiny_generator(task))
    x = trainer.generator.sample(16, rng=torch.Generator().manual_seed(2))
    state = trainer.rng.get_state()
    q, _ = trainer.rollout_rewards(x)
    trainer.rng.set_state(state)
    shuffled, _ = trainer.rewards(x)
    assert torch.equal(shuffled.sort(dim=0).values, q.sort(dim=0).values)
    assert not torch.equal(shuffled, q)


def test_matched_noise_has_the_advantages_scale_per_position_and_not_their_values():
    a = torch.randn(64, 20, generator=torch.Generator().manual_seed(0)) * torch.linspace(
        0.01, 1, 20
    )
    noise = matched_noise(a, torch.Generator().manual_seed(1))
    rms = lambda v: v.square().mean(dim=0).sqrt()  # noqa: E731
    assert torch.allclose(rms(noise), rms(a), rtol=1e-5)
    assert torch.equal(matched_noise(-a, torch.Generator().manual_seed(1)), noise)  # sign-blind
    assert abs(torch.corrcoef(torch.stack([a.flatten(), noise.flatten()]))[0, 1]) < 0.1


@pytest.mark.parametrize("preset", ["smoke", "quick", "long", "paper"])
def test_the_ten_times_discriminator_makes_ten_times_the_d_updates(preset):
    counts = {}
    for name in ("seqgan", "seqgan-d10"):
        spec = METHODS[name]
        cfg = build(spec.config, name, spec.presets[preset], {})
        counts[name] = (spec.budget(cfg, 5000, 20, 10_000), cfg)
    (base, base_cfg), (strong, strong_cfg) = counts["seqgan"], counts["seqgan-d10"]
    assert strong.adversary_updates == 10 * base.adversary_updates
    assert strong.adversary_parameters == base.adversary_parameters
    assert strong_cfg.d_pretrain_steps == 10 * base_cfg.d_pretrain_steps
    same = dataclasses.replace(strong_cfg, d_steps=1, d_pretrain_steps=1)
    assert same == dataclasses.replace(base_cfg, d_steps=1, d_pretrain_steps=1)


def test_the_ten_times_trainer_counts_ten_times_the_adam_steps_of_its_d():
    task = tiny_task(vocab=50, seq_len=20, n=256)

    def d_updates(trainer):
        return max(int(s["step"]) for s in trainer.discriminator_opt.state.values())

    for name in ("seqgan", "seqgan-d10"):
        trainer = _trainer(name, task, tiny_generator(task))
        pretrained = d_updates(trainer)
        trainer.step()
        if name == "seqgan":
            base = (pretrained, d_updates(trainer) - pretrained)
    assert (pretrained, d_updates(trainer) - pretrained) == (10 * base[0], 10 * base[1])


def test_the_rloo_baseline_of_a_sample_does_not_depend_on_it():
    r = torch.tensor([0.3, -1.2, 2.0, 0.7])
    baseline = r - leave_one_out_advantage(r)
    for i in range(4):
        moved = r.clone()
        moved[i] += 5.0
        new_baseline = moved - leave_one_out_advantage(moved)
        assert new_baseline[i] == pytest.approx(baseline[i].item())
        assert all(new_baseline[j] != baseline[j] for j in range(4) if j != i)
    assert torch.allclose(baseline, torch.tensor([1.5, 3.0, -0.2, 1.1]) / 3)


def test_grpo_and_reinforce_pp_normalise_and_agree_without_kl():
    logit, kl = torch.tensor([0.5, 1.5, -1.0, 3.0]), torch.zeros(4, 5)
    z = grpo(logit, kl, 0.0)[:, 0]
    assert z.mean().abs() < 1e-6 and z.std().item() == pytest.approx(1.0, rel=1e-6)
    pp = reinforce_pp(logit, kl, 0.0)  # (4, 5): per token; the std over 20 tokens, ddof 1
    # std over tokens / std over sequences = sqrt(T (B-1) / (B T - 1)) = sqrt(15 / 19)
    assert torch.allclose(pp * (15 / 19) ** 0.5, z[:, None].expand(4, 5), atol=1e-6)


def test_reinforce_pp_puts_the_kl_in_each_tokens_return_to_go():
    logit, kl = torch.zeros(2), torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    pp = reinforce_pp(logit, kl, 1.0)
    g = torch.tensor([[-6.0, -5.0, -3.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(pp, (g - g.mean()) / g.std(), atol=1e-6)


def test_the_kl_penalty_starts_at_zero_and_measures_the_drift(task):
    gen = tiny_generator(task)
    trainer = _trainer("rloo-kl-oracle-d", task, gen)
    x = gen.sample(8, rng=torch.Generator().manual_seed(3))
    plain = _trainer("rloo-oracle-d", task, tiny_generator(task))
    assert torch.allclose(trainer.rewards(x)[0], plain.rewards(x)[0], atol=1e-5)  # G = G_ref
    trainer.step()
    _, scalars = trainer.rewards(x)
    with torch.no_grad():
        drift = (gen.log_prob(x) - trainer.reference.log_prob(x)).mean().item()
    assert scalars["train/kl_ref"] == pytest.approx(drift, rel=1e-4) and drift != 0


def test_one_ppo_epoch_is_plain_reinforce(task):
    """With ppo-epochs 1 the clipped loss's gradient is REINFORCE's: the same Adam step."""
    a, b = (_trainer("rloo-oracle-d", task, tiny_generator(task)) for _ in range(2))
    x = a.generator.sample(16, rng=torch.Generator().manual_seed(4))
    q, _ = a.rewards(x)
    a.update_generator(x, q)
    PolicyTrainer.update_generator(b, x, q)
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_the_heldout_check_draws_nothing_from_the_training_stream(task, monkeypatch):
    checked = _trainer("seqgan", task, tiny_generator(task))
    silent = _trainer("seqgan", task, tiny_generator(task))
    monkeypatch.setattr(silent, "heldout_check", lambda: {})
    for _ in range(2):
        acc = checked.step()["train/d_heldout_acc"]
        silent.step()
        assert 0 <= acc <= 1 and (acc * 2 * checked.heldout.shape[0]).is_integer()
    for pa, pb in zip(checked.generator.parameters(), silent.generator.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert isinstance(checked, PGTrainer)
