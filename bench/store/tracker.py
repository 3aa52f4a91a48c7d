"""The MLflow store of an experiment: one parent run per invocation, one child run per cell.

Uses `MlflowClient` with explicit run ids (no global active run). Metrics go out in batches,
one `log_batch` call per evaluation, never one call per value.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.data
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag

from bench.store.faults import first_line, quiet_db_error_logs
from bench.store.liveness import driver_alive

MAX_TAG_LENGTH = 8000  # MLflow's limit on a tag value
SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "file", "databricks")


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says why and what to do."""


def default_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else MLflow's embedded default: ./mlflow.db (SQLite)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_uri(uri: str) -> None:
    """Fail fast (seconds, no traceback) on an unknown scheme or an unreachable server."""
    scheme = uri.split(":", 1)[0] if "://" in uri else "file"
    if scheme.split("+")[0] not in SCHEMES:
        raise TrackingError(
            f"tracking URI {uri!r} has unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}"
        )
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise TrackingError(
                f"tracking server {uri!r} is unreachable ({reason}); "
                "start it or pass --tracking-uri sqlite:///mlflow.db"
            ) from None


# A tracking server that goes away is noticed within a bounded time: MLflow's defaults retry a
# call 7 times with a backoff factor of 2 and a 120 s timeout (minutes per call); these bound a
# refused call to ~3 s and a hung one to ~95 s. A value the user set in the environment wins.
SERVER_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def server_gone(uri: str) -> str | None:
    """Why the tracking server at `uri` does not answer its health check now (5 s), or None:
    it answers, or `uri` is not a server."""
    if not is_server(uri):
        return None
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", e))
    return None


class StoreGone(TrackingError):
    """The tracking server stopped answering during an invocation."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(
            f"tracking server {uri!r} stopped answering during the run ({reason}); the cells "
            "finished before are stored there; once it is back, the same command resumes the rest"
        )


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: for a SQLite store, mlruns/<experiment> next to the
    database file (MLflow's own default is ./mlruns of whatever the working directory is, so a
    store in /tmp would put its artifacts into the checkout); None (the server's or store's
    default) for every other store."""
    db = sqlite_path(uri)
    if db is None:
        return None
    name = re.sub(r"[^\w.-]", "_", experiment)
    return (db.resolve().parent / "mlruns" / name).as_uri()


def read_only_reason(uri: str) -> str | None:
    """Why a SQLite store cannot be written (a read-only filesystem, no write permission on the
    database file or on its folder, where SQLite writes its journal and a new store its file), or
    None: it can, or it is not a SQLite store, or its folder does not exist (opening it then
    fails in one line)."""
    db = sqlite_path(uri)
    if db is None:
        return None
    folder = db.resolve().parent
    for path in (db, folder) if db.exists() else (folder,):
        try:
            if os.access(path, os.W_OK) or not path.exists():
                continue
            read_only = os.statvfs(path).f_flag & os.ST_RDONLY
        except OSError:  # gone meanwhile: opening the store will say so
            continue
        if read_only:
            return f"{str(path)!r} is on a read-only filesystem"
        return f"no write permission on {str(path)!r}"
    return None


def check_store_writable(uri: str) -> None:
    """TrackingError, before any work, when the SQLite store at `uri` cannot be written."""
    reason = read_only_reason(uri)
    if reason is not None:
        raise TrackingError(
            f"MLflow store {uri!r} is read-only ({reason}); this command records runs in it: "
            "pass a writable --tracking-uri"
        )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite store's URI; None for any other store (or in memory)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


@contextlib.contextmanager
def store_init_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, hold `<database>.init-lock` (flock) while the store is opened: MLflow
    creates and migrates a new database's tables on first use, and two processes doing that at
    once race (alembic) and can leave the store unusable; the experiment is created under it
    too. Other stores (a server, a database server) serialise this themselves."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    try:
        fd = os.open(f"{db}.init-lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:  # a folder we cannot write: MLflow's own error will name the problem
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class Tracker:
    """The MLflow store of one experiment."""

    def __init__(self, uri: str, experiment: str, create: bool = True) -> None:
        check_uri(uri)
        quiet_db_error_logs()
        if is_server(uri):
            for name, value in SERVER_RETRIES.items():
                os.environ.setdefault(name, value)  # inherited by --jobs workers
        db = sqlite_path(uri)
        if not create and db is not None and not db.exists():  # reading: never make a store
            raise TrackingError(f"no MLflow store at {str(db)!r} (from {uri!r})")
        lock = None if db is None else Path(f"{db}.init-lock")
        new_lock = lock is not None and not lock.exists()
        try:
            with store_init_lock(uri):
                self._open(uri, experiment, create)
        except TrackingError:
            if new_lock:  # a refused store keeps nothing of this attempt beside it
                lock.unlink(missing_ok=True)
            raise

    def _open(self, uri: str, experiment: str, create: bool) -> None:
        self.uri = uri
        try:
            self.client = MlflowClient(tracking_uri=uri)  # opens (a new store: creates) it
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None and not create:
                names = [e.name for e in self.client.search_experiments()]
                raise TrackingError(
                    f"no experiment {experiment!r} in {uri!r}; "
                    f"existing: {', '.join(names) or 'none'}"
                )
            self.experiment_id = (
                exp.experiment_id
                if exp is not None
                else self.client.create_experiment(
                    experiment, artifact_location=artifact_location(uri, experiment)
                )
            )
        except TrackingError:
            raise
        except Exception as e:  # the store itself is broken, unwritable or not a store
            raise TrackingError(f"cannot open MLflow store {uri!r}: {first_line(e)}") from None

    def check_reachable(self) -> None:
        """StoreGone when this store is a tracking server that no longer answers."""
        reason = server_gone(self.uri)
        if reason is not None:
            raise StoreGone(self.uri, reason)

    def parent_run(self, run_id: str) -> str:
        """`run_id` when it is a `bench.run` invocation's parent run in this experiment, else
        TrackingError naming what it is."""
        try:
            run = self.client.get_run(run_id)
        except Exception:
            raise TrackingError(f"no run {run_id!r} in {self.uri!r}") from None
        if run.info.experiment_id != self.experiment_id or run.data.tags.get("kind") != "parent":
            raise TrackingError(
                f"run {run_id!r} is not a bench.run invocation of this experiment "
                "(its parent run); omit --run-id for the latest"
            )
        return run_id

    def latest_parent(self) -> str:
        runs = self.client.search_runs(
            [self.experiment_id],
            "tags.kind = 'parent'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            raise TrackingError(f"experiment has no bench.run invocation in {self.uri!r}")
        return runs[0].info.run_id

    def start(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        tags = dict(tags) | ({"mlflow.parentRunId": parent} if parent else {})
        return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id

    def log_datasets(self, run_id: str, identity: str, splits: dict[str, object]) -> None:
        """The task's data splits as MLflow datasets (name '<task identity>/<split>', a digest
        of the data, its shape), so the runs view's Dataset column names the task a run used.
        `splits`: split name ('train', 'test') -> (n, T) integer tensor."""
        inputs = [
            DatasetInput(
                mlflow.data.from_numpy(
                    data.numpy(), name=f"{identity}/{split}"
                )._to_mlflow_entity(),
                tags=[InputTag("mlflow.data.context", split)],
            )
            for split, data in splits.items()
        ]
        self.client.log_inputs(run_id, datasets=inputs)

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        ts = int(time.time() * 1000)
        batch = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_artifacts(self, run_id: str, files: list[Path]) -> None:
        """Copy `files` to the run's artifact root (a file already there is replaced)."""
        for f in files:
            self.client.log_artifact(run_id, str(f))

    def set_description(self, run_id: str, markdown: str) -> None:
        """The run's description (Markdown), shown at the top of its MLflow page; cut to
        MLflow's longest tag value (8,000 characters), saying so."""
        if len(markdown) > MAX_TAG_LENGTH:
            cut = "\n\n(cut to fit an MLflow tag: the artifacts have it whole)"
            markdown = markdown[: MAX_TAG_LENGTH - len(cut)] + cut
        self.set_tags(run_id, {"mlflow.note.content": markdown})

    def log_json(self, run_id: str, obj: object, name: str) -> None:
        self.client.log_text(run_id, json.dumps(obj, indent=2, default=str), name)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def children(self, parent: str):
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent}'",
            max_results=10_000,
        )

    def cells(self, parent: str) -> list:
        """The runs of one invocation: its children plus the finished cells it reused."""
        tags = self.client.get_run(parent).data.tags
        ids = [t.split(".", 1)[1] for t in sorted(tags) if t.startswith("reused_run.")]
        ids += [r for r in tags.get("reused_runs", "").split(",") if r]  # stores before 0.1
        return list(self.children(parent)) + [self.client.get_run(r) for r in dict.fromkeys(ids)]

    def finished_run(self, key: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.cell_key = '{key}' and tags.cell_status = 'finished'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def mark_killed(self, key: str, cell_status: str = "killed") -> None:
        """Runs of this cell still RUNNING belong to a process that died (or was killed for
        its time limit: cell_status 'timeout'): mark them so, MLflow status KILLED."""
        stale = self.client.search_runs(
            [self.experiment_id], f"tags.cell_key = '{key}' and attributes.status = 'RUNNING'"
        )
        for run in stale:
            self.set_tags(run.info.run_id, {"cell_status": cell_status})
            self.end(run.info.run_id, "KILLED")

    def mark_stale_parents(self) -> list[str]:
        """Parent runs left RUNNING by an invocation on this host whose process is gone: mark
        them, and their runs still RUNNING (cells, pre-trainings: their workers died with the
        driver), KILLED, whatever methods this invocation runs. Returns the parents' run ids."""
        running = self.client.search_runs(
            [self.experiment_id], "tags.kind = 'parent' and attributes.status = 'RUNNING'"
        )
        stale = [r.info.run_id for r in running if driver_alive(r.data.tags) is False]
        for run_id in stale:
            children = self.client.search_runs(
                [self.experiment_id],
                f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'",
            )
            for child in children:
                self.set_tags(child.info.run_id, {"cell_status": "killed"})
                self.end(child.info.run_id, "KILLED")
            self.end(run_id, "KILLED")
        return stale

    def add_reused(self, parent: str, run_id: str) -> None:
        """Link a finished cell of an earlier invocation to this one: one tag per run, so
        concurrent workers never overwrite each other's."""
        self.set_tags(parent, {f"reused_run.{run_id}": "1"})

    def add_busy(self, parent: str, key: str, method: str, seed: int) -> None:
        """Record on the parent a cell this invocation skipped because another live one runs
        it: the report shows it as running elsewhere instead of silently lacking it."""
        self.set_tags(parent, {f"busy_cell.{key}": f"{method}/{seed}"})

    def busy_cells(self, parent: str) -> list[tuple[str, int]]:
        """(method, seed) of the cells `parent` skipped as running elsewhere and that have no
        finished run in the store now."""
        tags = self.client.get_run(parent).data.tags
        busy = []
        for tag, value in sorted(tags.items()):
            if tag.startswith("busy_cell.") and self.finished_run(tag.split(".", 1)[1]) is None:
                method, seed = value.rsplit("/", 1)
                busy.append((method, int(seed)))
        return busy

    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]
