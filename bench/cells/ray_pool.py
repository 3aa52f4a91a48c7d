"""`--executor ray`: one Ray task per job, a GPU each when the cluster has GPUs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from bench.cells.plan import Plan
from bench.cells.results import CellResult, worker_error
from bench.store.source import project_root
from methods.config import ConfigError

RAY_EXCLUDES = [".git", ".venv", ".tox", ".cache", "mlruns", "mlartifacts", "*.db", "reports"]


class RayPool:
    """--executor ray: one Ray task per job, a GPU each when the cluster has GPUs.

    The driver's code is shipped to the workers (`runtime_env` working_dir): cells are keyed by
    the driver's code versions, so a worker running other code would mislabel its results. A task
    whose worker dies is retried (cells resume exactly from their checkpoints, so a retry is
    safe), and workers' output reaches the driver's log."""

    RETRIES = 2

    def __init__(self, plan: Plan) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install '.[ray]'") from None
        runtime_env = {"working_dir": str(project_root()), "excludes": RAY_EXCLUDES}
        if ray.is_initialized():  # by the caller: its job-level runtime_env applies, not ours
            if "working_dir" not in ray.get_runtime_context().runtime_env:
                print(
                    "bench.run: Ray was initialised without a runtime_env working_dir: its "
                    "workers run whatever code they find, not necessarily this driver's",
                    file=sys.stderr,
                )
        else:  # working_dir uploads are only possible at the job level (ray.init)
            ray.init(
                address=plan.ray_address,
                include_dashboard=False,
                log_to_driver=True,
                runtime_env=runtime_env,
            )
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        options = dict(num_cpus=1, num_gpus=gpus, max_retries=self.RETRIES)
        self.ray, self.remote = ray, ray.remote(**options)(_run_job)

    def submit(self, job):
        # a task runs in its unpacked copy of the working tree: paths must not be relative
        return self.remote.remote(dataclasses.replace(job, plan=absolute_paths(job.plan)))

    def wait_one(self, handles: list) -> tuple[object, CellResult]:
        ready, _ = self.ray.wait(handles, num_returns=1)
        try:
            return ready[0], self.ray.get(ready[0])
        except Exception as e:  # a task's worker died (retries used up) or failed outside it
            return ready[0], worker_error(e)


def _run_job(job) -> CellResult:
    return job()


def absolute_paths(plan: Plan) -> Plan:
    """The plan with its cache directory, oracle file and SQLite store as absolute paths."""
    uri = plan.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    oracle = dataclasses.replace(plan.oracle, path=str(Path(plan.oracle.path).resolve()))
    return dataclasses.replace(
        plan, cache_dir=plan.cache_dir.resolve(), oracle=oracle, tracking_uri=uri
    )
