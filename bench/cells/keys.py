"""Cell keys: a hash of everything that determines a result, the code it runs included.

The code part is per key: a method's cells hash the import closure of the method's own files
and of the cell's training and evaluation (`bench.train.cell`), the pre-training hashes its own,
the reference rows the evaluation's (`bench.store.source`). So adding a method, or editing the
report, the CLI or another method, leaves a cell's key as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cells.plan import Plan
from bench.store.source import code_versions
from methods.base import MethodSpec
from oracle.data import Task

# bench settings that never change a result (resume is exact; a limit only stops a cell early),
# so they are not part of any key: any value finds the same cells
NOT_IN_KEYS = ("checkpoint_every", "cell_timeout")
CELL_CODE = ("bench.train.cell",)  # a cell's training and evaluation, pre-training included
PRETRAIN_CODE = ("bench.train.pretrain",)
REFERENCE_CODE = ("bench.metrics.evaluate",)


@dataclass(frozen=True)
class Cell:
    """One (method, seed) pair of an invocation and its key."""

    method: str
    seed: int
    key: str

    @property
    def name(self) -> str:
        return f"{self.method}-s{self.seed}"


def method_modules(spec: MethodSpec) -> tuple[str, ...]:
    """The modules a method's spec comes from: its trainer, config and budget."""
    found = (spec.make_trainer.__module__, spec.config.__module__, spec.budget.__module__)
    return tuple(dict.fromkeys(found))


def code_versions_of(specs: dict[str, MethodSpec], root: Path | None = None) -> dict[str, str]:
    """'pretrain', 'reference' and each method name -> the version of the code it runs."""
    roots = {name: (*method_modules(spec), *CELL_CODE) for name, spec in specs.items()}
    roots |= {"pretrain": PRETRAIN_CODE, "reference": REFERENCE_CODE}
    return code_versions(roots, root)


def cell_key(plan: Plan, method: str, seed: int, task: Task) -> str:
    """Hash of everything that determines a cell's result: configs, task, seed, device, code."""
    return _key(
        plan,
        task,
        plan.code[method],
        method=method,
        config=dataclasses.asdict(plan.configs[method]),
        pretrain=dataclasses.asdict(plan.pretrain),
        seed=seed,
    )


def reference_key(plan: Plan, name: str, task: Task) -> str:
    return _key(plan, task, plan.code["reference"], reference=name)


def _key(plan: Plan, task: Task, code: str, **ident) -> str:
    ident |= dict(
        bench={k: v for k, v in dataclasses.asdict(plan.bench).items() if k not in NOT_IN_KEYS},
        oracle=task.identity,
        device=plan.device.type,
        code=code,
        torch=torch.__version__,
    )
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
