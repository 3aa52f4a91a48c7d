"""Provenance of a run: the git commit, the environment's versions, MLflow's own context tags.

The code a result depends on is hashed separately, per cell (`bench.store.source`).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess

import mlflow
import numpy
import sacrebleu
import torch
from mlflow.tracking.context.registry import resolve_tags

from bench.store.source import project_root


def git_commit() -> str:
    root = project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "HEAD"], cwd=root, capture_output=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    # uncommitted edits: their hash, so two different edits never share cells or checkpoints
    dirty = f"-dirty-{hashlib.sha256(diff).hexdigest()[:8]}" if diff else ""
    return (sha or "unknown") + dirty


def environment_tags(device: torch.device) -> dict[str, str]:
    return {
        "git_commit": git_commit(),
        "device": str(device)
        + (
            f" ({torch.cuda.get_device_name(device)})"
            if device.type == "cuda"
            else f" ({platform.processor() or 'cpu'})"
        ),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "sacrebleu_version": sacrebleu.__version__,  # BLEU's tokenisation and smoothing
        "python_version": platform.python_version(),
        "mlflow_version": mlflow.__version__,
        "cuda_version": str(torch.version.cuda),
    }


def mlflow_context_tags(commit: str) -> dict[str, str]:
    """MLflow's own fields (user, source name and type), as `mlflow.start_run` would set them,
    and the code version (`mlflow.source.git.commit`): the UI's User, Source, Version columns."""
    tags = resolve_tags({})
    tags["mlflow.source.name"] = "python -m bench.run"
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.split("-dirty")[0]
    return tags
