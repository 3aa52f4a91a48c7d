"""The shared MLE pre-training: its config (`--pretrain.*`) and the generator it trains, cached.

Every method of one replicate seed starts from this generator; its settings (`--pretrain.*`: MLE's
update fields and its own) are not any method's, so no method's option changes another method's
starting point.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.config import BenchConfig
from bench.metrics.evaluate import EvalSettings, curve_point
from bench.metrics.nll import nll_test
from bench.train.loop import Metrics, Phase, PhaseHooks, run_phase
from methods import mle
from methods.base import TrainContext
from methods.config import hp
from methods.generator import LSTMGenerator
from oracle.cache_file import CacheFileError, load_verified, save_verified
from oracle.data import Task, validation_split
from oracle.model import parameter_digest

Curve = list[tuple[int, Metrics]]

# Source key: [HEAD] = LantaoYu/SeqGAN sequence_gan.py/generator.py at e2b52fb,
# [PAPER-ERA] = the same repo at 149b789; see shared/reference/seqgan-original.md.


@dataclass(frozen=True)
class PretrainConfig(mle.MLESettings):
    """The pre-training: MLE's update fields (lr, batch_size, clip: `methods.mle.MLESettings`)
    and its own length, initialisation and early stopping."""

    init_std: float = hp(
        0.1,
        "std of the N(0, std^2) initialisation of every generator parameter",
        source="[HEAD] init_matrix",
        check="positive",
    )
    epochs: int = hp(
        120,
        "epochs of MLE pre-training over the training set",
        source="[HEAD] PRE_EPOCH_NUM; 240 in [PAPER-ERA]",
        check="positive",
    )
    eval_every: int = hp(
        5,
        "pre-training epochs between learning-curve evaluations",
        source="[HEAD] evaluates every 5 epochs",
        check="positive",
    )
    early_stop_patience: int = hp(
        0,
        "early stopping: end pre-training after this many evaluations (every --pretrain."
        "eval-every epochs) without a lower validation NLL, and keep the generator of the best "
        "one; 0 = off, all epochs (the original)",
        source="Caccia et al. 2020 (Language GANs Falling Short) select MLE by validation NLL",
        check="nonneg",
    )
    n_valid: int = hp(
        10_000,
        "oracle samples in the validation split early stopping watches (its own seed; rows "
        "also in train or test are dropped); read only when early stopping is on (but, like "
        "every field, part of the pre-training's cache key)",
        source="the size of the held-out set (bench.n_test)",
        check="positive",
    )


PRESETS = {
    # smoke: a few hundred updates on a small training set, for tests (seconds)
    "smoke": dict(epochs=2, eval_every=1),
    # quick: sized for 2 CPU cores; 10 epochs, not 120: at lr 1e-2 NLL-test rises after a few
    # epochs while NLL-oracle keeps falling (the paper-oracle report's pre-training section)
    "quick": dict(epochs=10, eval_every=1),
    # long: the paper's recipe, 120 epochs (Table 1's MLE row, on the original's 9,984 sequences)
    "long": {},
    "paper": {},
}


def pretrain_updates(cfg: PretrainConfig, n_train: int) -> int:
    """Generator updates the pre-training makes: whole minibatches per epoch, times epochs."""
    return cfg.epochs * mle.updates_per_epoch(cfg, n_train)


def derive_seed(seed: int, *tags: str) -> int:
    """A seed for one purpose of one replicate, independent of the others (63 bits)."""
    digest = hashlib.sha256("/".join([str(seed), *tags]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Pretraining:
    """The shared pre-training of an invocation: one generator per replicate seed, cached in
    `cache_dir` under `key(seed)`. `code` is the version of the code it runs (its key's)."""

    cfg: PretrainConfig
    task: Task
    bench: BenchConfig
    device: torch.device
    cache_dir: Path
    code: str

    @property
    def updates(self) -> int:
        """Generator updates of a pre-training that runs all its epochs."""
        return pretrain_updates(self.cfg, self.bench.n_train)

    def key(self, seed: int) -> str:
        """Everything the pre-trained weights depend on, the code version included, so a
        change to the generator or to MLE retrains."""
        ident = dict(
            code=self.code,
            pretrain=asdict(self.cfg),
            task=self.task.identity,
            n_train=self.bench.n_train,
            seed=seed,
            curve=(self.bench.curve_samples, self.bench.eval_seed),
            device=torch.device(self.device).type,
            torch=torch.__version__,
            format=4,
        )
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def curve_point(self, model: LSTMGenerator) -> Metrics:
        """`curve_point` of `model` on the task. Every method's step 0 scores the same
        pre-trained generator: memoised on the task by the parameters' digest, so each process
        computes it once per seed (the same numbers: same weights, same evaluation stream)."""
        ev = EvalSettings.of(self.bench, self.device)
        key = ("curve_point", parameter_digest(model), ev)
        return dict(self.task.memo(key, lambda: curve_point(model, self.task, ev)))

    def generator(
        self,
        seed: int,
        log: Callable[[int, Metrics], None] = lambda step, m: None,
        tick: Callable[[Metrics], None] = lambda s: None,
    ) -> tuple[LSTMGenerator, int, float]:
        """(generator on the device, its update count, its training seconds); trained once,
        cached. With early stopping the seconds include the patience epochs after the best one.

        Its learning curve goes to `log` as it is measured, or at once from the cache. With
        early stopping the curve also holds `learning_curve/nll_valid` (the whole validation
        split), the run ends `early_stop_patience` evaluations after the best one, and the
        generator and update count returned are the best evaluation's (`early_stop/best_step`
        is logged there).
        """
        path = Path(self.cache_dir) / f"pretrain-{self.key(seed)}.pt"
        cfg, task, device = self.cfg, self.task, self.device
        gen = fresh_generator(task, cfg, seed).to(device)
        saved = None
        if path.exists():
            try:
                saved = load_verified(path)
            except CacheFileError as e:  # damaged: trained again, never used
                print(f"bench: {e}; pre-training seed {seed} again", file=sys.stderr)
        if saved is not None:
            gen.load_state_dict(saved["state"])
            for step, metrics in saved["curve"]:
                log(step, metrics)
            return gen, saved["updates"], saved["seconds"]
        rng = torch.Generator(device=device).manual_seed(derive_seed(seed, "pretrain"))
        trainer = mle.MLETrainer(cfg, TrainContext(task, device, rng, seed), gen)
        per_epoch = mle.updates_per_epoch(cfg, task.train.shape[0])
        phase = Phase(
            cfg.epochs * per_epoch, cfg.eval_every * per_epoch, bound=self.bench.max_abs_loss
        )
        curve: Curve = []
        ev = EvalSettings.of(self.bench, device)

        best = EarlyStopping(cfg.early_stop_patience, gen)
        valid = validation_split(task, cfg.n_valid).to(device) if best.patience else None

        def evaluate() -> Metrics:
            point = curve_point(gen, task, ev)
            if valid is not None:
                point["learning_curve/nll_valid"] = nll_test(gen, valid)
            return point

        def record(step: int, metrics: Metrics) -> None:
            curve.append((step, metrics))
            log(step, metrics)

        def stop(step: int, metrics: Metrics) -> bool:
            return best.patience > 0 and best.update(step, metrics["learning_curve/nll_valid"])

        perf = run_phase(trainer, phase, PhaseHooks(evaluate, record, tick, stop=stop))
        seconds = perf["perf/train_s"]
        updates = phase.updates
        if best.patience:
            gen.load_state_dict(best.state)
            updates = best.step
            record(best.step, {"early_stop/best_step": float(best.step)})
        state = {k: v.cpu() for k, v in gen.state_dict().items()}
        saved = {"state": state, "curve": curve, "updates": updates, "seconds": seconds}
        save_verified(saved, path)
        return gen, updates, seconds


def fresh_generator(task: Task, cfg: PretrainConfig, seed: int) -> LSTMGenerator:
    o = task.oracle
    gen = LSTMGenerator(o.vocab_size, o.emb_dim, o.hidden_dim, o.seq_len, o.start_token)
    return gen.init_normal_(cfg.init_std, torch.Generator().manual_seed(derive_seed(seed, "init")))


class EarlyStopping:
    """The best validation NLL so far, its step and a copy of the generator's weights then;
    `update` says when `patience` evaluations in a row have not improved on it."""

    def __init__(self, patience: int, generator: LSTMGenerator) -> None:
        self.patience, self.generator = patience, generator
        self.best, self.step, self.since = math.inf, 0, 0
        self.state: dict[str, torch.Tensor] = {}

    def update(self, step: int, nll_valid: float) -> bool:
        """Record an evaluation (lower is better); True once `patience` have not improved."""
        if nll_valid < self.best or not self.state:
            self.best, self.step, self.since = nll_valid, step, 0
            self.state = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}
        else:
            self.since += 1
        return self.since >= self.patience
