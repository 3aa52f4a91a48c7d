"""Scale-out: cells as Ray tasks on a local Ray cluster give the local executor's table."""

import shutil

import pandas as pd
import pytest
import torch

from bench.run import main

ray = pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install .[ray]")


@pytest.fixture(scope="module")
def local_ray_cluster():
    yield  # bench.run starts it, shipping this working tree to its workers
    ray.shutdown()


def _run(root, template, executor):
    root.mkdir()
    shutil.copy(template, root / "mlflow.db")
    argv = [
        "--preset",
        "smoke",
        "--methods",
        "mle",
        "--seeds",
        "2",
        "--executor",
        executor,
        "--tracking-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--experiment",
        "ray",
        "--reports-dir",
        str(root / "reports"),
        "--cache-dir",
        str(root.parent / "cache"),
        "--bench.sweep-alphas",
        "1",
    ]
    # a Ray task gets num_cpus=1, so Ray starts its worker with OMP_NUM_THREADS=1: the local run
    # uses one torch thread too (thread count changes the last bits of float sums, README
    # "Executors"; at the default 2 threads a seed's NLL differed on one 2-core machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    table = pd.read_csv(root / "reports" / "ray" / "table.csv", index_col="method", dtype=str)
    return table.drop(columns=[c for c in table.columns if "ms" in c or "setup" in c])


def test_ray_exits_1_naming_every_cell_without_a_result(tmp_path, mlflow_uri):
    from tests.test_reliability import cells_without_result_exit_1

    cells_without_result_exit_1(tmp_path, mlflow_uri, "--executor", "ray")


@pytest.mark.slow
def test_ray_executor_table_equals_local(tmp_path, _mlflow_template, local_ray_cluster):
    local = _run(tmp_path / "local", _mlflow_template, "local")
    remote = _run(tmp_path / "ray", _mlflow_template, "ray")
    assert "[" in remote.loc["mle", "NLL-oracle ↓"]  # both seeds finished
    pd.testing.assert_frame_equal(local, remote)
    env = ray.get_runtime_context().runtime_env
    assert env["working_dir"].startswith("gcs://")  # the driver's working tree, uploaded
