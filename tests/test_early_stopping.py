"""Early stopping of the MLE pre-training: a disjoint validation split, the best epoch kept."""

import torch

from bench.config import BenchConfig
from bench.metrics.nll import nll_test
from bench.train.pretrain import EarlyStopping, PretrainConfig, Pretraining
from methods.mle import updates_per_epoch
from oracle.data import validation_split
from tests.conftest import tiny_generator, tiny_task


def test_validation_split_is_its_own_draw_disjoint_from_train_and_test():
    task = tiny_task(vocab=3, seq_len=3, n=20)  # 27 possible sequences: collisions are certain
    valid = validation_split(task, 40)
    seen = {tuple(r) for r in torch.cat([task.train, task.test]).tolist()}
    assert 0 < valid.shape[0] < 40 and not {tuple(r) for r in valid.tolist()} & seen
    assert torch.equal(valid, validation_split(task, 40))  # its own fixed seed
    big = tiny_task()  # V=50, T=8: nothing in common, nothing dropped
    assert validation_split(big, 256).shape == (256, 8)
    assert not torch.equal(validation_split(big, 256), big.test)


def test_early_stopping_remembers_the_best_and_counts_evaluations_without_improvement():
    gen = tiny_generator(tiny_task())
    stopper = EarlyStopping(2, gen)
    assert not stopper.update(10, 5.0)
    with torch.no_grad():
        next(gen.parameters()).add_(1.0)  # later weights differ from the best's copy
    assert not stopper.update(20, 5.5) and stopper.update(30, 5.0)  # a tie is no improvement
    assert (stopper.step, stopper.best, stopper.since) == (10, 5.0, 2)
    assert not torch.equal(stopper.state["embedding.weight"], gen.state_dict()["embedding.weight"])


def test_pretraining_with_early_stopping_keeps_the_epoch_with_the_lowest_validation_nll(tmp_path):
    task = tiny_task(n=64)  # 64 training sequences: MLE over-fits them within a few epochs
    cfg = PretrainConfig(lr=5e-2, batch_size=16, epochs=40, eval_every=1, early_stop_patience=3)
    cfg_valid = validation_split(task, cfg.n_valid)
    bench = BenchConfig(curve_samples=64)
    curve: list[tuple[int, dict]] = []
    log = lambda step, m: curve.append((step, m))  # noqa: E731
    pretraining = Pretraining(cfg, task, bench, torch.device("cpu"), tmp_path, code="test")
    gen, updates, _ = pretraining.generator(0, log=log)
    points = [
        (s, m["learning_curve/nll_valid"]) for s, m in curve if "learning_curve/nll_valid" in m
    ]
    best_step, best_nll = min(points, key=lambda p: p[1])
    per_epoch = updates_per_epoch(cfg, 64)
    assert points[-1][0] < cfg.epochs * per_epoch  # it stopped early ...
    assert points[-1][0] == best_step + cfg.early_stop_patience * per_epoch  # ... patience later
    assert updates == best_step > 0 and curve[-1] == (
        best_step,
        {"early_stop/best_step": best_step},
    )
    assert nll_test(gen, cfg_valid) == best_nll  # the generator returned is the best epoch's
    again, cached_updates, _ = pretraining.generator(0, log=log)
    assert cached_updates == updates and nll_test(again, cfg_valid) == best_nll  # from the cache


def test_without_early_stopping_every_epoch_runs_and_no_validation_is_drawn(tmp_path):
    task = tiny_task(n=64)
    cfg = PretrainConfig(lr=5e-2, batch_size=16, epochs=3, eval_every=1)
    curve: list[tuple[int, dict]] = []
    log = lambda step, m: curve.append((step, m))  # noqa: E731
    pretraining = Pretraining(
        cfg, task, BenchConfig(curve_samples=64), torch.device("cpu"), tmp_path, code="t"
    )
    _, updates, _ = pretraining.generator(0, log=log)
    assert updates == 3 * updates_per_epoch(cfg, 64) == curve[-1][0]
    assert not any("learning_curve/nll_valid" in m for _, m in curve)
