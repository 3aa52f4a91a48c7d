"""tools/store_archive.py: finished runs carried to another store are reused as they were."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from bench.run import main as run_main
from bench.store.generators import load_generator
from bench.store.tracker import Tracker
from tools.store_archive import main as archive_main

EXPERIMENT = "archive"


def _store(template, root) -> str:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, root / "mlflow.db")
    return f"sqlite:///{root / 'mlflow.db'}"


def _run(uri: str, root) -> int:
    return run_main(
        [
            "--methods",
            "mle,seqgan",
            "--seeds",
            "1",
            "--preset",
            "smoke",
            "--tracking-uri",
            uri,
            "--experiment",
            EXPERIMENT,
            "--reports-dir",
            str(root / "reports"),
            "--cache-dir",
            str(root / "cache"),
        ]
    )


@pytest.fixture(scope="module")
def carried(tmp_path_factory, _mlflow_template):
    """Store A trains the cells; they are exported, imported into the empty store B, and the same
    bench.run against B (its own, empty cache) finds them there."""
    root = tmp_path_factory.mktemp("archive")
    uri_a, uri_b = _store(_mlflow_template, root / "a"), _store(_mlflow_template, root / "b")
    assert _run(uri_a, root / "a") == 0
    archive = root / "cells"
    args = ["--tracking-uri", uri_a, "--experiment", EXPERIMENT, str(archive)]
    assert archive_main(["export", *args]) == 0
    assert (
        archive_main(["import", "--tracking-uri", uri_b, "--experiment", EXPERIMENT, str(archive)])
        == 0
    )
    assert _run(uri_b, root / "b") == 0
    return dict(root=root, a=uri_a, b=uri_b, archive=archive)


def _runs(uri: str, kind: str) -> dict[tuple[str, str], object]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], f"tags.kind = '{kind}'")
    return {(r.data.tags["method"], r.data.tags["seed"]): r for r in runs}


def test_archive_has_one_file_per_finished_run(carried):
    names = sorted(p.name.rsplit("-", 1)[0] for p in carried["archive"].glob("*.json.gz"))
    assert names == [
        "method-mle-s0",
        "method-seqgan-s0",
        "pretrain-pretrain-s0",
        "reference-oracle-s0",
        "reference-uniform-s0",
        "reference-unigram-s0",
    ]


def test_rerun_against_the_imported_store_trains_nothing(carried):
    client = MlflowClient(carried["b"])
    exp = client.get_experiment_by_name(EXPERIMENT)
    parents = client.search_runs(
        [exp.experiment_id], "tags.kind = 'parent'", order_by=["attributes.start_time DESC"]
    )
    assert len(parents) == 1
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    assert children == []  # every cell, reference and pre-training was found, none ran
    reused = [t for t in parents[0].data.tags if t.startswith("reused_run.")]
    assert len(reused) == 5  # two cells, three reference rows


@pytest.mark.parametrize(
    "name", ["table.csv", "results.csv", "summary.csv", "sweep.csv", "pretrain.csv"]
)
def test_report_from_the_imported_store_is_the_same(carried, name):
    a = pd.read_csv(carried["root"] / "a" / "reports" / EXPERIMENT / name)
    b = pd.read_csv(carried["root"] / "b" / "reports" / EXPERIMENT / name)
    assert not a.empty
    if name in ("results.csv", "sweep.csv"):  # rows in the store's run order: ids decide it
        a, b = (f.sort_values(list(f.columns)).reset_index(drop=True) for f in (a, b))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("kind", ["method", "pretrain", "reference"])
def test_imported_runs_keep_tags_params_histories_and_times(carried, kind):
    runs_a, runs_b = _runs(carried["a"], kind), _runs(carried["b"], kind)
    assert runs_a and runs_a.keys() == runs_b.keys()
    client_a, client_b = MlflowClient(carried["a"]), MlflowClient(carried["b"])
    for cell, a in runs_a.items():
        b = runs_b[cell]
        assert b.data.tags["archive_source_run"] == a.info.run_id
        kept = {k: v for k, v in a.data.tags.items() if k != "mlflow.parentRunId"}
        assert {k: v for k, v in b.data.tags.items() if k != "archive_source_run"} == kept
        assert b.data.params == a.data.params
        assert (b.info.start_time, b.info.end_time, b.info.status) == (
            a.info.start_time,
            a.info.end_time,
            a.info.status,
        )
        assert [d.dataset.digest for d in b.inputs.dataset_inputs] == [
            d.dataset.digest for d in a.inputs.dataset_inputs
        ]
        for key in a.data.metrics:
            hist_a = [
                (m.step, m.value, m.timestamp)
                for m in client_a.get_metric_history(a.info.run_id, key)
            ]
            hist_b = [
                (m.step, m.value, m.timestamp)
                for m in client_b.get_metric_history(b.info.run_id, key)
            ]
            assert hist_b == hist_a, key


def test_text_artifacts_are_carried_and_generators_only_when_asked(
    carried, tmp_path, _mlflow_template
):
    (cell_a,) = [r for (m, _), r in _runs(carried["a"], "method").items() if m == "seqgan"]
    (cell_b,) = [r for (m, _), r in _runs(carried["b"], "method").items() if m == "seqgan"]
    paths_b = {f.path for f in MlflowClient(carried["b"]).list_artifacts(cell_b.info.run_id)}
    assert {"config.json", "samples.txt"} <= paths_b
    assert "generator.pt" not in paths_b

    uri_c = _store(_mlflow_template, tmp_path / "c")
    archive = tmp_path / "with-generators"
    common = ["--experiment", EXPERIMENT]
    assert (
        archive_main(
            ["export", "--tracking-uri", carried["a"], *common, "--generators", str(archive)]
        )
        == 0
    )
    assert archive_main(["import", "--tracking-uri", uri_c, *common, str(archive)]) == 0
    (cell_c,) = [r for (m, _), r in _runs(uri_c, "method").items() if m == "seqgan"]
    original = load_generator(MlflowClient(carried["a"]), cell_a.info.run_id)
    copied = load_generator(MlflowClient(uri_c), cell_c.info.run_id)
    assert copied.keys() == original.keys()
    for name, tensor in original["state_dict"].items():
        assert torch.equal(copied["state_dict"][name], tensor), name


def test_export_again_leaves_files_byte_identical_and_import_again_adds_nothing(carried, capsys):
    before = {p.name: p.read_bytes() for p in carried["archive"].glob("*.json.gz")}
    args = ["--experiment", EXPERIMENT]
    capsys.readouterr()
    assert (
        archive_main(["export", "--tracking-uri", carried["a"], *args, str(carried["archive"])])
        == 0
    )
    assert "exported 0 run(s)" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in carried["archive"].glob("*.json.gz")} == before
    tracker = Tracker(carried["b"], EXPERIMENT)
    count = len(tracker.client.search_runs([tracker.experiment_id], ""))
    assert (
        archive_main(["import", "--tracking-uri", carried["b"], *args, str(carried["archive"])])
        == 0
    )
    assert (
        f"imported 0 run(s) into {EXPERIMENT!r} ({len(before)} already" in capsys.readouterr().out
    )
    assert len(tracker.client.search_runs([tracker.experiment_id], "")) == count


def test_bad_paths_and_experiments_fail_in_one_line(mlflow_uri, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert (
        archive_main(["import", "--tracking-uri", mlflow_uri, "--experiment", "x", str(missing)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        archive_main(["import", "--tracking-uri", mlflow_uri, "--experiment", "x", str(empty)]) == 2
    )
    assert "no *.json.gz archive files" in capsys.readouterr().err
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    assert (
        archive_main(["import", "--tracking-uri", mlflow_uri, "--experiment", "x", str(broken)])
        == 2
    )
    assert f"{broken}: not an archive file" in capsys.readouterr().err
    assert (
        archive_main(
            ["export", "--tracking-uri", mlflow_uri, "--experiment", "absent", str(tmp_path / "o")]
        )
        == 2
    )
    assert "no experiment 'absent'" in capsys.readouterr().err
    outside = ["import", "--tracking-uri", mlflow_uri, "--experiment", "../x", str(empty)]
    assert archive_main(outside) == 2
    assert "--experiment '../x' is not a valid experiment name" in capsys.readouterr().err


def test_runs_exported_from_the_imported_store_are_the_same_files(carried, tmp_path):
    again = tmp_path / "again"
    assert (
        archive_main(
            ["export", "--tracking-uri", carried["b"], "--experiment", EXPERIMENT, str(again)]
        )
        == 0
    )
    original = {p.name: p.read_bytes() for p in carried["archive"].glob("*.json.gz")}
    assert {p.name: p.read_bytes() for p in again.glob("*.json.gz")} == original


def _edited(carried, tmp_path, edit):
    """A copy of one archived cell record, changed by `edit(record)` (returns what to write)."""
    import gzip
    import json

    source = sorted(carried["archive"].glob("method-*.json.gz"))[0]
    record = json.loads(gzip.decompress(source.read_bytes()))
    path = tmp_path / source.name
    path.write_bytes(gzip.compress(json.dumps(edit(record)).encode()))
    return path


def _drop_cell_key(r):
    r["tags"].pop("cell_key")
    return r


def _text_metric(r):
    key = next(iter(r["metrics"]))
    r["metrics"][key][0][1] = "nine"
    return r


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop_cell_key, "tag 'cell_key' is missing; nothing imported"),
        (_text_metric, "not [step, value, timestamp]; nothing imported"),
        (lambda r: [r], "holds a JSON list, not a run record"),
        (None, "not an archive file (Compressed file ended"),
    ],
    ids=["no-cell-key", "text-metric", "json-list", "truncated"],
)
def test_a_damaged_archive_imports_nothing_in_one_line(
    carried, mlflow_uri, tmp_path, capsys, edit, message
):
    if edit is None:  # cut short
        source = sorted(carried["archive"].glob("method-*.json.gz"))[0]
        path = tmp_path / source.name
        path.write_bytes(source.read_bytes()[:500])
    else:
        path = _edited(carried, tmp_path, edit)
    args = ["import", "--tracking-uri", mlflow_uri, "--experiment", "x", str(path)]
    assert archive_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    tracker = Tracker(mlflow_uri, "x")
    assert tracker.client.search_runs([tracker.experiment_id]) == []  # nothing, none RUNNING


def test_export_onto_a_regular_file_is_one_line(carried, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("")
    args = ["export", "--tracking-uri", carried["a"], "--experiment", EXPERIMENT, str(target)]
    assert archive_main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: File exists: {target}\n"


@pytest.mark.parametrize(
    "name", ["table.csv", "results.csv", "summary.csv", "sweep.csv", "pretrain.csv"]
)
def test_a_report_rendered_from_the_archive_alone_is_the_same(carried, _mlflow_template, name):
    """tools/archive_report.py: import into a fresh store, one parent linking every cell, and
    the report that bench.run wrote, without training or a cache."""
    from tools.archive_report import main as render_main

    root = carried["root"] / "rendered"
    if not (root / "reports" / EXPERIMENT / name).exists():
        uri = _store(_mlflow_template, root)
        argv = ["--tracking-uri", uri, "--experiment", EXPERIMENT, "--reports-dir"]
        assert render_main([*argv, str(root / "reports"), str(carried["archive"])]) == 0
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        (parent,) = client.search_runs([exp.experiment_id], "tags.kind = 'parent'")
        assert parent.info.status == "FINISHED"
        assert len([t for t in parent.data.tags if t.startswith("reused_run.")]) == 6
    a = pd.read_csv(carried["root"] / "a" / "reports" / EXPERIMENT / name)
    b = pd.read_csv(root / "reports" / EXPERIMENT / name)
    assert not a.empty
    if name in ("results.csv", "sweep.csv"):
        a, b = (f.sort_values(list(f.columns)).reset_index(drop=True) for f in (a, b))
    pd.testing.assert_frame_equal(a, b)
