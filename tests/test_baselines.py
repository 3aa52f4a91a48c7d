"""The MLE baselines as methods: the 0-update `pretrained` row and the early-stopped `mle-es`."""

import dataclasses

import torch

from bench.train.loop import Phase, PhaseHooks, run_phase
from methods import METHODS
from methods.base import TrainContext
from methods.config import build
from tests.conftest import tiny_generator, tiny_task


def _mle_es(task, start=None, **overrides):
    """An mle-es trainer from `start` (a generator; default a fresh tiny one)."""
    spec = METHODS["mle-es"]
    cfg = dataclasses.replace(build(spec.config, "mle-es", spec.presets["smoke"], {}), **overrides)
    rng = torch.Generator().manual_seed(0)
    gen = start or tiny_generator(task)
    trainer = spec.make_trainer(cfg, TrainContext(task, torch.device("cpu"), rng, 0), gen)
    return cfg, trainer


def _at_the_oracle(task):
    """A generator equal to the oracle: any MLE update on finite data moves it away."""
    gen = tiny_generator(task)
    gen.load_state_dict(task.oracle.state_dict())
    return gen


def _params(gen):
    return [p.detach().clone() for p in gen.parameters()]


def test_mle_es_started_at_the_oracle_stops_after_patience_and_returns_the_start():
    """From the oracle itself, the start is the best measurement: training ends `patience`
    measurements later with the start's weights back in place."""
    task = tiny_task()
    start = _at_the_oracle(task)
    first = _params(start)
    cfg, trainer = _mle_es(task, start, lr=0.1, updates=100, eval_every=2, patience=2)
    steps, nlls = [], []
    for _ in range(cfg.updates):
        steps.append(trainer.step())
        if "train/nll_valid" in steps[-1]:
            nlls.append(steps[-1]["train/nll_valid"])
        if steps[-1].get("train/stop"):
            break
    assert len(steps) == 4 and len(nlls) == 2
    assert steps[-1]["train/best_nll_valid"] < min(nlls)  # the start's, measured before step 1
    for a, b in zip(first, trainer.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    kept = _params(trainer.generator)
    assert trainer.step() == {"train/stop": 1.0}  # after the stop, no update
    for a, b in zip(kept, trainer.generator.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_trainer_saying_stop_ends_the_phase_at_that_evaluation():
    task = tiny_task()
    cfg, trainer = _mle_es(
        task, _at_the_oracle(task), lr=0.1, updates=100, eval_every=2, patience=2
    )
    logged = []
    hooks = PhaseHooks(lambda: {}, lambda step, metrics: logged.append(step))
    run_phase(trainer, Phase(cfg.updates, cfg.eval_every), hooks)
    assert logged == [0, 2, 4]


def test_mle_es_at_its_cap_keeps_the_best_weights_too():
    task = tiny_task()
    cfg, trainer = _mle_es(task, lr=1e-2, updates=6, eval_every=4, patience=5)
    outs = [trainer.step() for _ in range(cfg.updates)]
    assert [o.get("train/stop", 0.0) for o in outs] == [0, 0, 0, 0, 0, 1.0]
    best = trainer.watch.best
    assert all(torch.equal(best[k], v) for k, v in trainer.generator.state_dict().items())


def test_the_pretrained_row_evaluates_its_start_only():
    task = tiny_task()
    spec = METHODS["pretrained"]
    cfg = build(spec.config, "pretrained", spec.presets["quick"], {})
    gen = tiny_generator(task)
    before = _params(gen)
    trainer = spec.make_trainer(
        cfg, TrainContext(task, torch.device("cpu"), torch.Generator(), 0), gen
    )
    logged = []
    run_phase(
        trainer,
        Phase(cfg.updates, cfg.eval_every),
        PhaseHooks(lambda: {}, lambda s, m: logged.append(s)),
    )
    assert logged == [0]
    assert all(torch.equal(a, b) for a, b in zip(before, gen.parameters(), strict=True))


def test_the_budget_of_an_early_stopped_method_says_what_it_made_of_its_cap():
    import pandas as pd

    from bench.report.budgets import budget_table

    rows = [
        dict(kind="method", method=m, seed=s, status="finished", run_id=f"{m}{s}")
        | dict(metric=f"resources/{k}", value=v)
        for m, cap in (("mle-es", 1000.0), ("mle", 100.0))
        for s in (0, 1)
        for k, v in (("generator_updates", cap), ("paper_generator_updates", 2000.0))
    ]
    made = pd.DataFrame(
        dict(
            method=["mle-es", "mle-es", "mle", "mle"],
            seed=[0, 1, 0, 1],
            updates=[250, 400, 100, 100],
        )
    )
    table = budget_table(pd.DataFrame(rows), made)["generator updates"]
    assert table["mle-es"] == "250–400 made, of up to 1,000 (0.5 × paper)"
    assert table["mle"] == "100 (0.05 × paper)"
