"""What a method is, for the benchmark: a config, presets, and a trainer with one `step`.

A method module builds a `MethodSpec`; `methods/__init__.py` lists them in `METHODS`. The
benchmark loop (`bench/loop.py`) owns evaluation, logging, timing and divergence checks: a
trainer only performs generator updates and returns the scalars it wants logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from methods.generator import LSTMGenerator

if TYPE_CHECKING:  # oracle.data imports methods.generator: a runtime import here would cycle
    from oracle.data import Task

PRESET_NAMES = ("smoke", "quick", "paper")


class MethodConfig(Protocol):
    updates: int  # generator updates this method makes after the shared MLE pre-training
    eval_every: int  # generator updates between two evaluations of the learning curve


class Trainer(Protocol):
    generator: LSTMGenerator

    def step(self) -> dict[str, float]:
        """One generator update (plus whatever critic work precedes it).

        Returns scalars to log, keys namespaced: 'train/g_loss', 'train/d_loss', 'perf/...'.
        """
        ...


@dataclass
class TrainContext:
    task: Task
    device: torch.device
    rng: torch.Generator  # the replicate's training randomness, on `device`
    seed: int  # the replicate seed that made `rng`; for anything that needs its own stream


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str  # one line for --help and the report
    config: type  # a frozen dataclass satisfying MethodConfig
    presets: dict[str, dict[str, Any]]  # preset name -> field overrides of the config defaults
    make_trainer: Callable[[Any, TrainContext, LSTMGenerator], Trainer]


def minibatches(data: Tensor, batch_size: int, rng: torch.Generator, device: torch.device):
    """Endless shuffled minibatches (batch_size, T) of `data`, reshuffled every epoch, on device."""
    while True:
        order = torch.randperm(data.shape[0], generator=_cpu(rng))
        for i in range(0, data.shape[0] - batch_size + 1, batch_size):
            yield data[order[i : i + batch_size]].to(device)


def _cpu(rng: torch.Generator) -> torch.Generator:
    """randperm needs a CPU generator; derive one deterministically from a device generator."""
    if rng.device.type == "cpu":
        return rng
    seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device).item())
    return torch.Generator().manual_seed(seed)
