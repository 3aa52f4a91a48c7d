"""Every registered method, tested once registered: config, presets, trainer contract."""

import dataclasses
import io
import math

import pytest
import torch

from methods import METHODS
from methods.base import PRESET_NAMES, TrainContext, parameter_count
from methods.config import build
from methods.generator import LSTMGenerator
from tests.conftest import tiny_generator, tiny_task

PRESETS = ("quick", "long", "paper")
NAMES = sorted(METHODS)
# the methods that make updates (`pretrained` is the 0-update row: tested on its own below)
TRAINING = [
    n for n in NAMES if build(METHODS[n].config, n, METHODS[n].presets["smoke"], {}).updates
]
ADVERSARY_PARTS = ("discriminator", "critic", "ranker", "mediator")  # the second network


@pytest.fixture(scope="module")
def task20():
    """V=50 but the paper's length T=20, so paper-shaped discriminators fit."""
    return tiny_task(vocab=50, seq_len=20, n=256)


def _trainer(name, task, seed=0, gen_seed=0, fresh=True):
    spec = METHODS[name]
    cfg = build(spec.config, name, spec.presets["smoke"], {})
    gen = tiny_generator(task, seed=gen_seed)
    rng = torch.Generator().manual_seed(seed)
    ctx = TrainContext(task, torch.device("cpu"), rng, seed, fresh=fresh)
    return spec.make_trainer(cfg, ctx, gen), rng


@pytest.mark.parametrize("name", NAMES)
def test_config_fields_are_documented_and_presets_valid(name):
    spec = METHODS[name]
    assert spec.name == name and spec.summary
    assert set(spec.presets) == set(PRESET_NAMES)
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    assert {"updates", "eval_every"} <= set(fields)
    for f in fields.values():
        assert f.metadata.get("help"), f"{name}.{f.name} has no help text"
        assert isinstance(f.default, int | float | str | bool | tuple)
    for preset in PRESET_NAMES:
        cfg = build(spec.config, name, spec.presets[preset], {})
        assert cfg.updates >= 0 and cfg.eval_every >= 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.updates = 1


@pytest.mark.parametrize("name", NAMES)
def test_long_preset_is_the_published_update_count_with_quicks_adversary(name):
    """long = paper's number of generator updates, everything else as quick (CPU-sized)."""
    spec = METHODS[name]
    quick, long, paper = (build(spec.config, name, spec.presets[p], {}) for p in PRESETS)
    assert long.updates == paper.updates >= quick.updates
    assert dataclasses.replace(long, updates=quick.updates, eval_every=quick.eval_every) == quick
    assert long.updates // long.eval_every <= 20  # evaluations stay a small part of the time


def test_long_preset_pretrains_with_the_papers_recipe_on_the_originals_data():
    from bench.config import PRESETS as BENCH_PRESETS
    from bench.config import BenchConfig
    from bench.train.pretrain import PRESETS as PRETRAIN_PRESETS
    from bench.train.pretrain import PretrainConfig

    long = PretrainConfig(**PRETRAIN_PRESETS["long"])
    assert long == PretrainConfig(**PRETRAIN_PRESETS["paper"]) and long.epochs == 120
    assert BenchConfig(**BENCH_PRESETS["long"]).n_train == 9_984  # [HEAD]'s 156 batches of 64


@pytest.mark.parametrize("name", NAMES)
def test_budget_counts_the_configs_updates_and_the_adversary_the_trainer_builds(name, task20):
    spec = METHODS[name]
    cfg = build(spec.config, name, spec.presets["smoke"], {})
    budget = spec.budget(cfg, task20.vocab_size, task20.seq_len, task20.train.shape[0])
    assert budget.generator_updates == cfg.updates
    trainer, _ = _trainer(name, task20)
    adversary = [m for k, m in trainer.parts().items() if k in ADVERSARY_PARTS]
    assert budget.adversary_parameters == sum(parameter_count(m) for m in adversary)
    assert (budget.adversary_updates == 0) == (budget.adversary_parameters == 0) == (not adversary)


def test_budget_of_seqgans_discriminator_by_hand():
    spec = METHODS["seqgan"]
    cfg = build(spec.config, "seqgan", spec.presets["smoke"], {})  # E=16, widths 2,3, 8 maps each
    budget = spec.budget(cfg, 5000, 20, 10_000)
    conv = (2 * 16 * 8 + 8) + (3 * 16 * 8 + 8)
    assert budget.adversary_parameters == 5000 * 16 + conv + (16 * 32 + 32) + (16 * 2 + 2)
    assert budget.adversary_updates == 1 * 1 * (2 * 128 // 64)  # d-steps x epochs x minibatches
    paper = spec.budget(build(spec.config, "seqgan", {}, {}), 5000, 20, 9_984)
    assert paper.adversary_updates == 5 * 3 * (2 * 9_984 // 64)  # [HEAD]: 4,680 per G update


@pytest.mark.parametrize("name", TRAINING)
def test_trainer_updates_the_generator_and_returns_finite_scalars(name, task20):
    trainer, _ = _trainer(name, task20)
    assert isinstance(trainer.generator, LSTMGenerator)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    for _ in range(2):
        scalars = trainer.step()
        assert scalars and all("/" in k for k in scalars)
        assert all(isinstance(v, float) and math.isfinite(v) for v in scalars.values())
    after = list(trainer.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    x = trainer.generator.sample(4, rng=torch.Generator().manual_seed(0))
    assert x.shape == (4, 20)
    assert torch.isfinite(trainer.generator.log_prob(x)).all()


@pytest.mark.parametrize("name", TRAINING)
def test_trainer_is_deterministic_on_cpu(name, task20):
    (a, _), (b, _) = _trainer(name, task20, seed=7), _trainer(name, task20, seed=7)
    for _ in range(2):
        assert a.step().keys() == b.step().keys()
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters(), strict=True):
        assert torch.equal(pa, pb)


def _train_scalars(trainer, steps):
    return [
        {k: v for k, v in trainer.step().items() if not k.startswith("perf/")} for _ in range(steps)
    ]


@pytest.mark.parametrize("name", TRAINING)
def test_trainer_resumed_from_its_state_continues_bit_for_bit(name, task20):
    """A checkpoint (trainer state + rng state, through torch.save/load) continues exactly: the
    resumed trainer's next updates equal the uninterrupted ones, across a data-epoch boundary."""
    a, rng_a = _trainer(name, task20, seed=3)
    _train_scalars(a, 3)
    buffer = io.BytesIO()
    torch.save({"trainer": a.state_dict(), "rng": rng_a.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # what bench/cells/checkpoint.py does
    expected = _train_scalars(a, 4)

    b, rng_b = _trainer(name, task20, seed=99, gen_seed=5, fresh=False)  # different everything
    b.load_state_dict(saved["trainer"])
    rng_b.set_state(saved["rng"])
    assert _train_scalars(b, 4) == expected
    for pa, pb in zip(a.generator.parameters(), b.generator.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", NAMES)
def test_trainer_refuses_a_state_with_other_parts(name, task20):
    trainer, _ = _trainer(name, task20)
    state = trainer.state_dict()
    state.pop("generator")
    with pytest.raises(ValueError, match="generator"):
        trainer.load_state_dict(state)


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(TRAINING)))
def test_a_method_without_updates_has_none_in_any_preset_and_refuses_a_step(name, task20):
    spec = METHODS[name]
    for preset in PRESET_NAMES:
        assert build(spec.config, name, spec.presets[preset], {}).updates == 0
    trainer, _ = _trainer(name, task20)
    with pytest.raises(RuntimeError, match="no updates"):
        trainer.step()
