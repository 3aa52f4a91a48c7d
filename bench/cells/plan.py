"""The resolved plan of an invocation, its device, and what its cells share at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.config import BenchConfig
from bench.store.tracker import Tracker
from bench.train.pretrain import PretrainConfig, Pretraining
from methods.config import ConfigError
from oracle.data import OracleSpec, Task


@dataclass
class Plan:
    """Everything one invocation will do, resolved and validated before any work starts."""

    methods: list[str]
    seeds: list[int]
    preset: str
    device: torch.device
    oracle: OracleSpec
    tracking_uri: str
    experiment: str
    reports_dir: Path
    cache_dir: Path
    bench: BenchConfig
    pretrain: PretrainConfig  # the shared MLE pre-training of every cell
    configs: dict[str, object]  # method name -> its resolved Config, for the methods run
    command: str
    # 'pretrain', 'reference' and each method -> its code version (bench.cells.keys)
    code: dict[str, str] = field(default_factory=dict)
    force: bool = False  # re-run cells already finished in the store
    executor: str = "local"  # local: cells one after another here; ray: one Ray task per cell
    ray_address: str | None = None  # None starts a local Ray cluster
    jobs: int = 1  # local executor: cells run in this many worker processes at once
    plan_only: bool = False  # --plan: print what each cell would do and exit, training nothing

    def pretraining(self, task: Task) -> Pretraining:
        """The shared pre-training of this plan's cells on `task`."""
        return Pretraining(
            self.pretrain, task, self.bench, self.device, self.cache_dir, self.code["pretrain"]
        )


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present), 'cpu' or 'cuda'; ConfigError for CUDA where there is none."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Invocation:
    """What the cells of one `bench.run` invocation share: its plan, task, store and parent run."""

    plan: Plan
    task: Task
    tracker: Tracker
    parent: str  # the invocation's MLflow parent run
    tags: dict[str, str]  # environment and task tags every run of the invocation carries
