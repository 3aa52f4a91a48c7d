"""A trained generator kept as the MLflow artifact `generator.pt`: what it holds, written, read.

The file is a plain dict that `torch.load(path, weights_only=True)` reads: the generator's CPU
state dict, the ints that rebuild its `LSTMGenerator` (vocab_size, emb_dim, hidden_dim, seq_len,
start_token) and strings naming where it came from (method, oracle identity, cell key; seed is
an int). ~1.3 MB at V = 5000. `bench.rescore` re-evaluates these files, `bench.sample` samples.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from methods.generator import LSTMGenerator

ARTIFACT = "generator.pt"
FORMAT = 1
SHAPE = ("vocab_size", "emb_dim", "hidden_dim", "seq_len", "start_token")
# a child run of `bench.rescore` holds no file of its own: this tag names the run that does
GENERATOR_RUN_TAG = "generator_run"


class StoredGeneratorError(RuntimeError):
    """A run has no readable generator.pt; the message names the run."""


def generator_record(
    gen: LSTMGenerator, method: str, seed: int, oracle: str, cell_key: str = ""
) -> dict:
    """The dict `generator.pt` holds. Copies the weights to CPU: the generator, its device and
    every random stream are left as they were."""
    return {
        "format": FORMAT,
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in gen.state_dict().items()},
        **{name: int(getattr(gen, name)) for name in SHAPE},
        "method": str(method),
        "seed": int(seed),
        "oracle": str(oracle),
        "cell_key": str(cell_key),
    }


def rebuild_generator(record: dict) -> LSTMGenerator:
    """The LSTMGenerator of a `generator_record`, on CPU; StoredGeneratorError when the record
    lacks a size or its weights do not fit them (a tensor missing, another shape)."""
    try:
        gen = LSTMGenerator(*(int(record[name]) for name in SHAPE))
        gen.load_state_dict(record["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise StoredGeneratorError(
            f"{ARTIFACT} does not hold a generator its sizes describe ({reason})"
        ) from None
    return gen


def log_generator(tracker, run_id: str, record: dict) -> None:
    """Log `record` as the run's `generator.pt` artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        torch.save(record, path)
        tracker.log_artifacts(run_id, [path])


def generator_source(run) -> str:
    """The run id whose artifacts hold `run`'s generator (itself, unless it was rescored)."""
    return run.data.tags.get(GENERATOR_RUN_TAG) or run.info.run_id


def has_generator(client, run) -> bool:
    try:
        return any(f.path == ARTIFACT for f in client.list_artifacts(generator_source(run)))
    except Exception:  # an artifact store that cannot be listed holds nothing usable
        return False


def load_generator(client, run_id: str) -> dict:
    """The `generator_record` stored with run `run_id` (or with the run its rescored copy
    names), read with weights_only=True; StoredGeneratorError if there is none."""
    try:
        run = client.get_run(run_id)
    except Exception:
        raise StoredGeneratorError(f"no run {run_id!r} in the store") from None
    source = generator_source(run)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(source, ARTIFACT, tmp)
        except Exception:
            name = run.data.tags.get("mlflow.runName", "?")
            raise StoredGeneratorError(
                f"run {run_id} ({name}) has no {ARTIFACT} (finished before generators were kept, "
                "or not a finished method cell)"
            ) from None
        try:
            return torch.load(path, weights_only=True)
        except Exception as e:
            raise StoredGeneratorError(f"{ARTIFACT} of run {source} is unreadable: {e}") from None
