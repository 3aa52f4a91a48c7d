"""A model scored on the task: curve points, final metrics, the temperature sweep; metric names.

Names as logged to MLflow, where a run's page shows each metric's last value, so every name holds
one number or one learning curve: `learning_curve/*` (the cheap points, a history over update
steps), `final/*` (the headline numbers, once), `sweep/<metric>/a<alpha>` (one key per
temperature of the sweep, once each; `sweep_key`) and `perf/*`. Final and sweep points both
carry the exact divergences of `scored` (`DIVERGENCES`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bench.config import BenchConfig
from bench.metrics.bleu import bleu, self_bleu
from bench.metrics.divergence import forward_kl, jensen_shannon, reverse_kl
from bench.metrics.nll import mean_nll, nll_oracle, nll_test
from methods.generator import SequenceModel, UnigramModel
from oracle.data import Task

BLEU_ORDERS = (2, 3, 4, 5)
# what `scored` adds to NLL-oracle and NLL-test, all in nats, all lower-is-better but entropy
DIVERGENCES = ("entropy", "reverse_kl", "forward_kl", "jeffreys", "jsd")
_SWEEP_KEY = re.compile(r"^(sweep/[\w.-]+)/a([^/]+)$")


@dataclass(frozen=True)
class EvalSettings:
    """How every model is scored: sample counts, the evaluation seed, the device."""

    device: torch.device
    seed: int
    curve_samples: int
    final_samples: int
    bleu_samples: int  # 0: all final samples
    sweep_alphas: tuple[float, ...]
    sweep_samples: int

    @classmethod
    def of(cls, settings: BenchConfig, device) -> EvalSettings:
        return cls(
            device=torch.device(device),
            seed=settings.eval_seed,
            curve_samples=settings.curve_samples,
            final_samples=settings.final_samples,
            bleu_samples=settings.bleu_samples,
            sweep_alphas=settings.sweep_alphas,
            sweep_samples=settings.sweep_samples,
        )


def sweep_key(metric: str, alpha: float) -> str:
    """The MLflow key of one sweep metric at one alpha: 'sweep/nll_oracle/a0.5'. The alpha is
    written as its shortest round-trip repr, so `parse_sweep_key` returns the very float."""
    return f"{metric}/a{float(alpha)!r}"


def parse_sweep_key(key: str) -> tuple[str, float] | None:
    """(metric, alpha) of a `sweep_key`, None for any other key."""
    m = _SWEEP_KEY.match(key)
    if m is None:
        return None
    try:
        return m.group(1), float(m.group(2))
    except ValueError:
        return None


# a named part of an evaluation, timed by the caller (bench.train.stopwatch); untimed by default
Part = Callable[[str], AbstractContextManager]


def _untimed(name: str) -> AbstractContextManager:
    return nullcontext()


def eval_rng(seed: int) -> torch.Generator:
    """A fresh evaluation stream: evaluation never consumes or depends on training randomness.
    On CPU on every device: `sample_portable` draws there, so the draws are the same everywhere."""
    return torch.Generator().manual_seed(seed)


def curve_point(model: SequenceModel, task: Task, ev: EvalSettings) -> dict[str, float]:
    """Cheap learning-curve point: NLL-oracle of n = curve_samples samples, NLL-test of n
    held-out sequences (`learning_curve/*`: fewer samples than `final_metrics`, so not its
    numbers). Both lower is better."""
    n = ev.curve_samples
    samples = model.sample_portable(n, rng=eval_rng(ev.seed))  # (n, T)
    return {
        "learning_curve/nll_oracle": nll_oracle(task.oracle, samples),
        "learning_curve/nll_test": nll_test(model, task.test[:n]),
    }


def scored(
    model: SequenceModel,
    task: Task,
    samples: Tensor,
    heldout: Tensor,
    oracle_on_heldout: Tensor,
    temperature: float = 1.0,
) -> dict[str, float]:
    """NLL-oracle, NLL-test and the exact divergences of one model at one temperature.

    `samples` (n, T): the model's own draws at `temperature`; `heldout` (m, T): oracle samples
    it never trained on; `oracle_on_heldout` (m,): the oracle's log-likelihood of them. Keys:
    nll_oracle, nll_test, entropy (H(G): G's own per-token NLL of `samples`, one more
    teacher-forced pass), reverse_kl (= nll_oracle − entropy) and forward_kl (= nll_test − the
    oracle's NLL of `heldout`) per token, each with a standard error `*_se`, jeffreys (their sum)
    and jsd (sequence-level Jensen–Shannon, nats, ≤ ln 2). Lower is better for all but entropy.
    """
    oracle_on_g = task.oracle.log_prob(samples)  # (n,)
    model_on_g = model.log_prob(samples, temperature=temperature)  # (n,)
    model_on_p = model.log_prob(heldout, temperature=temperature)  # (m,)
    rkl, rkl_se = reverse_kl(oracle_on_g, model_on_g, samples.shape[1])
    fkl, fkl_se = forward_kl(oracle_on_heldout, model_on_p, heldout.shape[1])
    return {
        "nll_oracle": mean_nll(oracle_on_g, samples),
        "nll_test": mean_nll(model_on_p, heldout),
        "entropy": mean_nll(model_on_g, samples),
        "reverse_kl": rkl,
        "reverse_kl_se": rkl_se,
        "forward_kl": fkl,
        "forward_kl_se": fkl_se,
        "jeffreys": rkl + fkl,
        "jsd": jensen_shannon(oracle_on_heldout, model_on_p, oracle_on_g, model_on_g),
    }


def final_metrics(
    model: SequenceModel, task: Task, ev: EvalSettings, part: Part = _untimed
) -> tuple[dict[str, float], Tensor]:
    """Every headline metric (`final/` + the keys of `scored`, BLEU and Self-BLEU), and the
    samples they were computed from (n, T), n = final_samples. NLL-test and the forward KL use
    the whole held-out set; BLEU and Self-BLEU score the first bleu_samples samples, all n when
    it is 0. `part(name)` times each stage (final_sample, final_score, final_bleu,
    final_self_bleu)."""
    n, n_bleu = ev.final_samples, ev.bleu_samples
    with part("final_sample"):
        samples = model.sample_portable(n, rng=eval_rng(ev.seed))  # (n, T)
    with part("final_score"):
        point = scored(model, task, samples, task.test, task.heldout_log_prob())
    out = {f"final/{k}": v for k, v in point.items()}
    hyps = samples[: n_bleu or n].cpu()  # (n_bleu, T)
    with part("final_bleu"):
        out.update({f"final/bleu{k}": v for k, v in bleu(hyps, task.test, BLEU_ORDERS).items()})
    with part("final_self_bleu"):
        out.update({f"final/self_bleu{k}": v for k, v in self_bleu(hyps, BLEU_ORDERS).items()})
    return out, samples


def temperature_sweep(
    model: SequenceModel, task: Task, ev: EvalSettings
) -> list[tuple[float, dict[str, float]]]:
    """Quality, coverage and the divergences with the logits multiplied by each alpha
    (temperature 1/alpha).

    Returns [(alpha, {'sweep/<key>'})] for each of `ev.sweep_alphas`, the keys of `scored`
    without the standard errors: n = sweep_samples samples at that temperature and the first n
    held-out sequences. Every alpha uses the same evaluation stream (common random numbers).
    Logged under `sweep_key(metric, alpha)`, one key per alpha.
    """
    points, n = [], ev.sweep_samples
    heldout = task.test[:n]  # (n, T)
    oracle_on_p = task.heldout_log_prob(n)  # (n,)
    for alpha in ev.sweep_alphas:
        samples = model.sample_portable(n, rng=eval_rng(ev.seed), temperature=1 / alpha)  # (n, T)
        point = scored(model, task, samples, heldout, oracle_on_p, temperature=1 / alpha)
        points.append((alpha, {f"sweep/{k}": v for k, v in point.items() if not k.endswith("_se")}))
    return points


def sweep_best(alphas, oracle_nlls, test_nlls) -> tuple[float, float]:
    """The best point of one (method, seed)'s sweep: (least NLL-oracle + NLL-test, its alpha).

    `alphas`, `oracle_nlls`, `test_nlls`: (k,) arrays, one entry per alpha (any order). Lower sum
    is better; the alpha is a location (no direction); ties go to the first entry; NaNs skipped.
    """
    total = np.asarray(oracle_nlls, float) + np.asarray(test_nlls, float)  # (k,)
    i = int(np.nanargmin(total))
    return float(total[i]), float(np.asarray(alphas, float)[i])


def sweep_metrics(model: SequenceModel, task: Task, ev: EvalSettings) -> dict[str, float]:
    """The temperature sweep as logged: every `sweep_key` metric, sweep/best_sum and
    sweep/best_alpha (`sweep_best`), sweep/best_jeffreys (the least Jeffreys divergence over
    the alphas, lower is better) and sweep/best_jeffreys_alpha (its alpha, first on ties)."""
    points = temperature_sweep(model, task, ev)
    metrics = {sweep_key(k, alpha): v for alpha, point in points for k, v in point.items()}
    best_sum, best_alpha = sweep_best(
        [alpha for alpha, _ in points],
        [point["sweep/nll_oracle"] for _, point in points],
        [point["sweep/nll_test"] for _, point in points],
    )
    jeffreys = [point["sweep/jeffreys"] for _, point in points]
    i = int(np.nanargmin(jeffreys))
    return metrics | {
        "sweep/best_sum": best_sum,
        "sweep/best_alpha": best_alpha,
        "sweep/best_jeffreys": float(jeffreys[i]),
        "sweep/best_jeffreys_alpha": float(points[i][0]),
    }


def reference_models(task: Task) -> dict[str, SequenceModel]:
    """Reference rows: the oracle itself (its divergences are 0), its unigram marginal, uniform
    tokens."""
    return {
        "oracle": task.oracle,
        "unigram": UnigramModel.from_counts(task.train, task.vocab_size),
        "uniform": UnigramModel.uniform(task.vocab_size, task.seq_len),
    }
