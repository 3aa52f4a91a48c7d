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
