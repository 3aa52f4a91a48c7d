"""Against a real tracking server: `mlflow server` on 127.0.0.1 (a free port), a smoke run
logging to it over HTTP, and the parent run's report read back through the client."""

import shutil
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


@pytest.fixture
def mlflow_server(tmp_path, _mlflow_template):
    """A tracking server whose store and artifacts are all under tmp_path; yields its URI."""
    shutil.copy(_mlflow_template, tmp_path / "server.db")  # migrated: starts in seconds
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    cmd += ["--artifacts-destination", str(tmp_path / "artifacts")]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (open while the server runs)
    server = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / "server.log").read_text()
                    pytest.fail(f"mlflow server did not start:\n{log_text}")
                time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


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
