"""Against a real tracking server: `mlflow server` on 127.0.0.1 (a free port), a smoke run
logging to it over HTTP, and the parent run's report read back through the client."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow import MlflowClient

from bench.run import main
from tests.test_e2e import check_parent_has_the_answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(root, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port, store and artifacts under root, in its own session
    (so that killing its process group stops its workers too), once it answers."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'server.db'}"]
    cmd += ["--artifacts-destination", str(root / "artifacts")]
    with open(root / "server.log", "ab") as log:
        server = subprocess.Popen(
            cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                _stop(server)
                pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()}")
            time.sleep(0.5)


def _stop(server: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(server.pid, sig)
    except ProcessLookupError:
        pass
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture
def mlflow_server(tmp_path, _mlflow_template):
    """A tracking server whose store and artifacts are all under tmp_path; yields its URI."""
    shutil.copy(_mlflow_template, tmp_path / "server.db")  # migrated: starts in seconds
    port = _free_port()
    server = _start_server(tmp_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(server)


@pytest.mark.slow
def test_a_run_against_a_tracking_server_puts_the_report_on_its_parent(tmp_path, mlflow_server):
    argv = ["--methods", "mle", "--preset", "smoke", "--bench.sweep-alphas", "1"]
    argv += ["--tracking-uri", mlflow_server, "--experiment", "server"]
    argv += ["--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    out = tmp_path / "reports" / "server"
    check_parent_has_the_answer(MlflowClient(tracking_uri=mlflow_server), "server", out)
    stored = {p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()}
    assert {"README.md", "summary.csv", "samples.txt"} <= stored  # proxied into the destination
    # through the server: the cells' datasets and generators, and a rescore of them
    from bench import rescore
    from bench.store.generators import load_generator, rebuild_generator

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("server")
    (cell,) = client.search_runs([exp.experiment_id], "tags.kind = 'method'")
    splits = {i.tags[0].value for i in client.get_run(cell.info.run_id).inputs.dataset_inputs}
    assert splits == {"train", "test"}
    record = load_generator(client, cell.info.run_id)
    assert record["method"] == "mle" and rebuild_generator(record).vocab_size == 5000
    rescore_argv = ["--experiment", "server", "--tracking-uri", mlflow_server]
    rescore_argv += ["--reports-dir", str(tmp_path / "reports"), "--cache-dir", str(tmp_path / "c")]
    assert rescore.main(rescore_argv) == 0
    (again,) = client.search_runs([exp.experiment_id], f"tags.rescored_run = '{cell.info.run_id}'")
    for key in ("final/nll_oracle", "final/nll_test", "final/bleu4"):
        assert again.data.metrics[key] == cell.data.metrics[key]


@pytest.mark.slow
def test_a_server_killed_mid_run_stops_the_run_in_one_line_and_a_rerun_resumes(
    tmp_path, _mlflow_template
):
    """SIGKILL to the server (its whole process group) while the first cell trains: the driver
    stops within seconds with one line and exit 2; with the server back, the same command
    finishes every cell."""
    shutil.copy(_mlflow_template, tmp_path / "server.db")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "bench.run", "--methods", "mle,seqgan-const"]
    argv += ["--preset", "smoke", "--bench.sweep-alphas", "1", "--tracking-uri", uri]
    argv += ["--experiment", "gone", "--reports-dir", str(tmp_path / "reports")]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    server = _start_server(tmp_path, port)
    try:
        run = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while not list((tmp_path / "cache").glob("pretrain-*.pt")):  # the cells are next
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.1)
        time.sleep(2.0)
        _stop(server, signal.SIGKILL)
        killed = time.monotonic()
        _, err = run.communicate(timeout=300)
        stopped_after = time.monotonic() - killed
    finally:
        _stop(server)
    assert run.returncode == 2 and stopped_after < 120, (run.returncode, stopped_after, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"tracking server '{uri}' stopped answering during the run" in err
    server = _start_server(tmp_path, port)
    try:
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("gone")
        done = client.search_runs([exp.experiment_id], "tags.cell_status = 'finished'")
        assert {r.data.tags["method"] for r in done if r.data.tags["kind"] == "method"} == {
            "mle",
            "seqgan-const",
        }
        running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
        assert running == []  # the killed invocation's parent and cell were marked on rerun
    finally:
        _stop(server)
