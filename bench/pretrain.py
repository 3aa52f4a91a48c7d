"""The shared MLE pre-training, cached by everything that determines it.

Every method of one replicate seed starts from this same generator: the `mle` row and each GAN
row differ only in what happens after it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from bench.config import BenchConfig
from bench.evaluate import curve_point
from bench.loop import Metrics, Phase, run_phase
from methods import mle
from methods.base import TrainContext
from methods.generator import LSTMGenerator
from oracle.data import Task

Curve = list[tuple[int, Metrics]]


def derive_seed(seed: int, *tags: str) -> int:
    """A seed for one purpose of one replicate, independent of the others (63 bits)."""
    digest = hashlib.sha256("/".join([str(seed), *tags]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def pretrain_key(
    cfg: mle.Config, task: Task, bench: BenchConfig, seed: int, device, code: str
) -> str:
    """The cache key: everything the pre-trained weights depend on, the source code included
    (`bench.tracking.source_version`), so a change to the generator or to MLE retrains."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in ("updates", "eval_every")}
    ident = dict(
        code=code,
        mle=fields,
        task=task.identity,
        n_train=bench.n_train,
        seed=seed,
        curve=(bench.curve_samples, bench.eval_seed),
        device=torch.device(device).type,
        torch=torch.__version__,
        format=2,
    )
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def fresh_generator(task: Task, cfg: mle.Config, seed: int) -> LSTMGenerator:
    o = task.oracle
    gen = LSTMGenerator(o.vocab_size, o.emb_dim, o.hidden_dim, o.seq_len, o.start_token)
    return gen.init_normal_(cfg.init_std, torch.Generator().manual_seed(derive_seed(seed, "init")))


def pretrained_generator(
    cfg: mle.Config,
    task: Task,
    bench: BenchConfig,
    seed: int,
    device: torch.device,
    cache_dir: Path,
    *,
    code: str,
    log: Callable[[int, Metrics], None] = lambda step, m: None,
    tick: Callable[[Metrics], None] = lambda s: None,
) -> tuple[LSTMGenerator, int, float]:
    """(generator on device, its update count, its training seconds); trained once, cached.

    Its learning curve goes to `log` as it is measured, or at once from the cache.
    """
    key = pretrain_key(cfg, task, bench, seed, device, code)
    path = Path(cache_dir) / f"pretrain-{key}.pt"
    gen = fresh_generator(task, cfg, seed).to(device)
    if path.exists():
        saved = torch.load(path)
        gen.load_state_dict(saved["state"])
        for step, metrics in saved["curve"]:
            log(step, metrics)
        return gen, saved["updates"], saved["seconds"]
    rng = torch.Generator(device=device).manual_seed(derive_seed(seed, "pretrain"))
    trainer = mle.MLETrainer(cfg, TrainContext(task, device, rng, seed), gen)
    per_epoch = mle.updates_per_epoch(cfg, task.train.shape[0])
    phase = Phase(cfg.pretrain_epochs * per_epoch, cfg.pretrain_eval_every * per_epoch)
    curve: Curve = []

    def evaluate() -> Metrics:
        return curve_point(gen, task, bench.curve_samples, bench.eval_seed, device)

    def record(step: int, metrics: Metrics) -> None:
        curve.append((step, metrics))
        log(step, metrics)

    perf = run_phase(trainer, phase, evaluate, record, bench.max_abs_loss, tick)
    seconds = perf["perf/train_s"]
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in gen.state_dict().items()}
    saved = {"state": state, "curve": curve, "updates": phase.updates, "seconds": seconds}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # unique: parallel workers may race
    torch.save(saved, tmp)
    tmp.replace(path)  # atomic: a killed run never leaves half a checkpoint
    return gen, phase.updates, seconds
