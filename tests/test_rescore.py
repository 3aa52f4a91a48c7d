"""Kept generators: each finished cell logs generator.pt; bench.rescore and bench.sample use it.

One smoke invocation (mle, one seed, one sweep alpha) into a real SQLite MLflow store is shared
by the tests below.
"""

import re
import shutil

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from bench import rescore, sample
from bench.metrics.evaluate import eval_rng
from bench.run import main as run_main
from bench.store.generators import ARTIFACT, SHAPE, rebuild_generator

EXPERIMENT = "keep"


@pytest.fixture(scope="module")
def store(tmp_path_factory, _mlflow_template):
    root = tmp_path_factory.mktemp("keep")
    shutil.copy(_mlflow_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    argv = ["--methods", "mle", "--preset", "smoke", "--bench.sweep-alphas", "1"]
    argv += ["--tracking-uri", uri, "--experiment", EXPERIMENT]
    argv += ["--reports-dir", str(root / "reports"), "--cache-dir", str(root / "cache")]
    assert run_main(argv) == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    (parent,) = client.search_runs([exp.experiment_id], "tags.kind = 'parent'")
    (cell,) = client.search_runs([exp.experiment_id], "tags.kind = 'method'")
    return dict(uri=uri, root=root, client=client, exp=exp, parent=parent, cell=cell)


def _args(store, *extra: str) -> list[str]:
    return [
        "--experiment",
        EXPERIMENT,
        "--tracking-uri",
        store["uri"],
        "--reports-dir",
        str(store["root"] / "rescored"),
        "--cache-dir",
        str(store["root"] / "cache"),
        *extra,
    ]


def _stored(store, tmp_path) -> dict:
    path = store["client"].download_artifacts(store["cell"].info.run_id, ARTIFACT, str(tmp_path))
    return torch.load(path, weights_only=True)


def test_a_finished_cell_keeps_its_generator(store, tmp_path):
    record = _stored(store, tmp_path)
    assert all(type(record[k]) is int for k in SHAPE)
    assert (record["vocab_size"], record["seq_len"], record["start_token"]) == (5000, 20, 0)
    assert record["method"] == "mle" and record["seed"] == 0
    assert record["oracle"] == store["parent"].data.tags["oracle"]
    assert record["cell_key"] == store["cell"].data.tags["cell_key"]
    assert all(v.device.type == "cpu" for v in record["state_dict"].values())
    # the very weights that were scored: they redraw the final samples, samples.txt
    gen = rebuild_generator(record)
    params = store["cell"].data.params
    n, seed = int(params["bench.final_samples"]), int(params["bench.eval_seed"])
    drawn = gen.sample_portable(n, rng=eval_rng(seed))[:1000]
    text = store["client"].download_artifacts(
        store["cell"].info.run_id, "samples.txt", str(tmp_path)
    )
    stored = [[int(t) for t in line.split()] for line in open(text).read().splitlines()]
    assert drawn.tolist() == stored


def _children(client, parent_id: str) -> dict[str, object]:
    runs = client.search_runs(
        [client.get_run(parent_id).info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    return {r.data.tags["method"]: r for r in runs if r.data.tags["kind"] != "pretrain"}


def _scores(run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if k.startswith(("final/", "sweep/"))}


def test_rescore_reproduces_the_stored_metrics_exactly(store, capsys):
    client, old = store["client"], store["parent"].info.run_id
    assert rescore.main(_args(store, "--run-id", old)) == 0
    new = client.search_runs([store["exp"].experiment_id], f"tags.rescored_from = '{old}'")
    assert len(new) == 1 and new[0].data.tags["kind"] == "parent"
    new_id = new[0].info.run_id
    before, after = _children(client, old), _children(client, new_id)
    assert set(after) == set(before) == {"mle", "oracle", "unigram", "uniform"}
    for method, run in before.items():
        scores = _scores(run)
        assert "final/nll_oracle" in scores and "final/bleu4" in scores
        assert _scores(after[method]) == scores, method  # bit for bit
        assert after[method].data.tags["rescored_run"] == run.info.run_id
    assert "sweep/nll_oracle/a1.0" in _scores(after["mle"])
    copied = client.get_metric_history(after["mle"].info.run_id, "learning_curve/nll_oracle")
    assert copied
    out = store["root"] / "rescored" / f"{EXPERIMENT}-rescored"
    assert (out / "table.csv").exists()
    pretrain = pd.read_csv(out / "pretrain.csv")  # the original's pre-training, found by code
    assert not pretrain.empty and set(pretrain.seed) == {0}
    assert {"README.md", "table.csv"} <= {f.path for f in client.list_artifacts(new_id)}
    assert new_id in capsys.readouterr().out
    # a rescored invocation rescored again: its runs name the run that holds generator.pt
    assert rescore.main(_args(store, "--run-id", new_id)) == 0
    (again,) = client.search_runs([store["exp"].experiment_id], f"tags.rescored_from = '{new_id}'")
    assert _scores(_children(client, again.info.run_id)["mle"]) == _scores(before["mle"])


def test_sample_prints_the_requested_token_id_lines(store, capsys):
    run_id = store["cell"].info.run_id
    assert sample.main([run_id, "--n", "7", "--tracking-uri", store["uri"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7
    for line in lines:
        tokens = [int(t) for t in line.split()]
        assert len(tokens) == 20 and all(0 <= t < 5000 for t in tokens)


def test_rescore_of_a_generator_missing_a_tensor_is_one_line_and_leaves_nothing_running(
    store, tmp_path, capsys
):
    from bench.store.generators import log_generator
    from bench.store.tracker import Tracker

    client, exp_id = store["client"], store["exp"].experiment_id
    old = _copy_of_the_invocation(store, "damaged")
    cell = store["cell"]
    child_tags = {k: v for k, v in cell.data.tags.items() if not k.startswith("mlflow.")}
    child = client.create_run(
        exp_id, run_name="mle-s0", tags=child_tags | {"mlflow.parentRunId": old}
    ).info.run_id
    for k, v in cell.data.params.items():
        client.log_param(child, k, v)
    record = _stored(store, tmp_path)
    record["state_dict"].pop("out.bias")
    log_generator(Tracker(store["uri"], EXPERIMENT), child, record)
    client.set_terminated(child)
    client.set_terminated(old)
    assert rescore.main(_args(store, "--run-id", old)) == 2
    _one_line_error(capsys, "bench.rescore", "does not hold a generator its sizes describe")
    assert client.search_runs([exp_id], "attributes.status = 'RUNNING'") == []


def test_sample_streams_the_same_rows_as_one_draw(store, capsys):
    """2,500 rows printed 1,000 at a time (bounded memory) are the rows of one 2,500-row draw."""
    from bench.store.generators import load_generator

    run_id = store["cell"].info.run_id
    assert sample.main([run_id, "--n", "2500", "--seed", "3", "--tracking-uri", store["uri"]]) == 0
    printed = [[int(t) for t in line.split()] for line in capsys.readouterr().out.splitlines()]
    gen = rebuild_generator(load_generator(store["client"], run_id))
    assert printed == gen.sample_portable(2500, rng=torch.Generator().manual_seed(3)).tolist()


def test_sample_refuses_a_seed_that_overflows(store, capsys):
    with pytest.raises(SystemExit) as info:
        sample.main(["0" * 32, "--seed", "99999999999999999999", "--tracking-uri", store["uri"]])
    assert info.value.code == 2
    _one_line_error(capsys, "python -m bench.sample", "--seed 99999999999999999999: a seed")


def _copy_of_the_invocation(store, name: str) -> str:
    """A new parent run with the stored invocation's tags and params (no children yet)."""
    client, parent = store["client"], store["parent"]
    tags = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")}
    run_id = client.create_run(store["exp"].experiment_id, run_name=name, tags=tags).info.run_id
    for k, v in parent.data.params.items():
        client.log_param(run_id, k, v)
    return run_id


def _one_line_error(capsys, prog: str, text: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error:") and text in err, err


def test_rescore_refuses_a_missing_experiment_or_run(store, capsys):
    args = _args(store)
    args[1] = "no-such-experiment"
    assert rescore.main(args) == 2
    _one_line_error(capsys, "bench.rescore", "no experiment 'no-such-experiment'")
    assert rescore.main(_args(store, "--run-id", "0" * 32)) == 2
    _one_line_error(capsys, "bench.rescore", "no run")
    assert rescore.main(_args(store, "--run-id", store["cell"].info.run_id)) == 2
    _one_line_error(capsys, "bench.rescore", "not a bench.run invocation")
    assert sample.main(["0" * 32, "--tracking-uri", store["uri"]]) == 2
    _one_line_error(capsys, "bench.sample", "no run")
    args = _args(store)
    args[1] = "../keep"  # would write reports/../keep-rescored
    assert rescore.main(args) == 2
    _one_line_error(capsys, "bench.rescore", "--experiment '../keep' is not a valid experiment")


def test_rescore_refuses_another_task(store, capsys):
    old = store["parent"].info.run_id
    assert rescore.main(_args(store, "--run-id", old, "--oracle-seed", "67")) == 2
    _one_line_error(capsys, "bench.rescore", "the rebuilt task is 'random-s67-")


def test_the_task_data_digest_is_tagged_on_every_run_and_named_in_the_report(store):
    digest = store["parent"].data.tags["task_data"]
    assert re.fullmatch("[0-9a-f]{12}", digest)
    assert store["cell"].data.tags["task_data"] == digest
    report = (store["root"] / "reports" / EXPERIMENT / "README.md").read_text()
    assert f"task data `{digest}`" in report


@pytest.mark.parametrize("tag", ["0123456789ab", None])
def test_rescore_refuses_an_invocation_scored_on_other_task_data(store, capsys, tmp_path, tag):
    """Another digest (data drawn by other sampling code), or none (stored before the tag)."""
    old = _copy_of_the_invocation(store, "other-data")
    client = store["client"]
    if tag is None:
        client.delete_tag(old, "task_data")
    else:
        client.set_tag(old, "task_data", tag)
    child_tags = {k: v for k, v in store["cell"].data.tags.items() if not k.startswith("mlflow.")}
    child_tags |= {"task_data": tag} if tag else {}
    child = client.create_run(
        store["exp"].experiment_id, run_name="c", tags=child_tags | {"mlflow.parentRunId": old}
    )
    kept = client.download_artifacts(store["cell"].info.run_id, ARTIFACT, str(tmp_path))
    client.log_artifact(child.info.run_id, kept)  # the very generator: only the tag differs
    client.set_terminated(child.info.run_id)
    client.set_terminated(old)
    assert rescore.main(_args(store, "--run-id", old)) == 2
    expected = (
        "the rebuilt task data are" if tag else "has no task_data tag: it was scored on task data"
    )
    _one_line_error(capsys, "bench.rescore", expected)


def test_rescore_refuses_runs_without_generator(store, capsys):
    """An invocation whose finished cell has no generator.pt (a store from before)."""
    client, exp_id = store["client"], store["exp"].experiment_id
    old = _copy_of_the_invocation(store, "old")
    child_tags = dict(kind="method", method="mle", seed="0", cell_status="finished")
    child = client.create_run(
        exp_id, run_name="mle-s0", tags=child_tags | {"mlflow.parentRunId": old}
    )
    client.set_terminated(child.info.run_id)
    client.set_terminated(old)
    assert rescore.main(_args(store, "--run-id", old)) == 2
    _one_line_error(capsys, "bench.rescore", "without generator.pt")
    assert sample.main([child.info.run_id, "--tracking-uri", store["uri"]]) == 2
    _one_line_error(capsys, "bench.sample", "has no generator.pt")
