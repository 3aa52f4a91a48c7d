"""What a method is, for the benchmark: a config, presets, and a trainer with one `step`.

A method module builds a `MethodSpec`; `methods/__init__.py` lists them in `METHODS`. The
benchmark loop (`bench/train/loop.py`) owns evaluation, logging, timing and divergence checks:
a trainer only performs generator updates and returns the scalars it wants logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from methods.generator import LSTMGenerator

if TYPE_CHECKING:  # oracle.data imports methods.generator: a runtime import here would cycle
    from oracle.data import Task

# smoke: tests; quick: the default, reduced budgets; long: every method's paper-preset number of
# generator updates with quick's reduced adversary work (CPU-sized); paper: everything published
PRESET_NAMES = ("smoke", "quick", "long", "paper")


class MethodConfig(Protocol):
    updates: int  # generator updates this method makes after the shared MLE pre-training
    eval_every: int  # generator updates between two evaluations of the learning curve


class Trainer(Protocol):
    generator: LSTMGenerator

    def step(self) -> dict[str, float]:
        """One generator update (plus whatever critic work precedes it).

        Returns scalars to log, keys namespaced: 'train/g_loss', 'train/d_loss', 'perf/...'.
        'train/d_loss' means the same in every method: the mean loss over this step's
        discriminator or critic updates (methods/discriminator.py states the naming rule).
        'train/stop' > 0 ends the phase at the next evaluation (early stopping: methods/mle_es.py).
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything the next `step` depends on except the context's `rng` (the benchmark
        saves that itself): networks, optimizers, minibatch positions, schedule counters."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Checkpointable:
    """`state_dict` / `load_state_dict` for a trainer, from the parts it names in `parts()`.

    Each part is anything with its own `state_dict` / `load_state_dict`: a module, an optimizer,
    a `Minibatches`, a `StepCount`.
    """

    def parts(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self.parts().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        parts = self.parts()
        if set(state) != set(parts):
            raise ValueError(f"checkpoint holds {sorted(state)}, this trainer has {sorted(parts)}")
        for name, part in parts.items():
            part.load_state_dict(state[name])


class StepCount:
    """An integer a trainer advances (a schedule position), checkpointable like a module."""

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def state_dict(self) -> dict[str, int]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.value = int(state["value"])


@dataclass
class TrainContext:
    task: Task
    device: torch.device
    rng: torch.Generator  # the replicate's training randomness, on `device`
    seed: int  # the replicate seed that made `rng`; for anything that needs its own stream
    # False when a checkpoint is loaded right after construction: skip one-off setup work
    # (SeqGAN's discriminator pre-training) whose result the checkpoint already holds
    fresh: bool = True


@dataclass(frozen=True)
class Budget:
    """What one cell of a method spends, so every reported number can say its budget."""

    generator_updates: int  # after the shared pre-training
    adversary_updates: float  # discriminator / critic parameter updates per generator update
    adversary_parameters: int  # size of the discriminator / critic (0: none)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str  # one line for --help and the report
    config: type  # a frozen dataclass satisfying MethodConfig
    presets: dict[str, dict[str, Any]]  # preset name -> field overrides of the config defaults
    make_trainer: Callable[[Any, TrainContext, LSTMGenerator], Trainer]
    # (config, vocab size V, sequence length T, training-set size) -> its Budget; builds no
    # trainer, so the report can also price the paper preset
    budget: Callable[[Any, int, int, int], Budget]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class Minibatches:
    """Endless shuffled minibatches (batch_size, T) of `data`, reshuffled every epoch, on device.

    An iterator with a checkpointable position: the epoch's order and the next index.
    """

    def __init__(
        self, data: Tensor, batch_size: int, rng: torch.Generator, device: torch.device
    ) -> None:
        self.data, self.batch_size, self.rng, self.device = data, batch_size, rng, device
        self.order: Tensor | None = None  # (n,) this epoch's permutation; None before the first
        self.next = 0

    def __iter__(self) -> Minibatches:
        return self

    def __next__(self) -> Tensor:
        if self.order is None or self.next + self.batch_size > self.data.shape[0]:
            self.order, self.next = torch.randperm(self.data.shape[0], generator=_cpu(self.rng)), 0
        rows = self.order[self.next : self.next + self.batch_size]
        self.next += self.batch_size
        return self.data[rows].to(self.device)  # (batch_size, T)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.next = state["order"], int(state["next"])


def _cpu(rng: torch.Generator) -> torch.Generator:
    """randperm needs a CPU generator; derive one deterministically from a device generator."""
    if rng.device.type == "cpu":
        return rng
    seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device).item())
    return torch.Generator().manual_seed(seed)
