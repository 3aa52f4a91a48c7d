"""Cache files that verify themselves: a damaged or truncated file is reported and rebuilt,
never used (task data, pre-training, cell checkpoints)."""

import pytest
import torch

from bench.cells.checkpoint import load_checkpoint, save_checkpoint
from bench.config import BenchConfig
from bench.train.pretrain import PretrainConfig, Pretraining
from oracle.cache_file import CacheFileError, load_verified, save_verified
from oracle.data import OracleSpec, load_task
from tests.conftest import tiny_task

SPEC = OracleSpec(seed=3, vocab_size=50, emb_dim=8, hidden_dim=8, seq_len=8)


def _flip_last_bytes(path, n=100):
    """The low bit of the last `n` bytes (tensor data sit at the end of torch.save's zip)."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) - n - 1, len(data) - 1):
        data[i] ^= 1
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_verified_file_round_trips_and_any_damage_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    obj = {"a": torch.arange(1000), "b": 3}
    save_verified(obj, path)
    got = load_verified(path)
    assert torch.equal(got["a"], obj["a"]) and got["b"] == 3
    _flip_last_bytes(path, 1)
    with pytest.raises(CacheFileError, match="is damaged"):
        load_verified(path)
    save_verified(obj, path)
    _truncate(path)
    with pytest.raises(CacheFileError, match="is damaged"):
        load_verified(path)
    torch.save(obj, path)  # a file of the format before digests
    with pytest.raises(CacheFileError, match="another format"):
        load_verified(path)


@pytest.mark.parametrize("damage", [_flip_last_bytes, _truncate])
def test_damaged_task_data_are_sampled_again_not_used(tmp_path, capsys, damage):
    first = load_task(SPEC, 200, 100, tmp_path)
    (path,) = tmp_path.glob("data-*.pt")
    damage(path)
    again = load_task(SPEC, 200, 100, tmp_path)
    assert torch.equal(first.train, again.train) and torch.equal(first.test, again.test)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sampling the task data again" in err
    load_task(SPEC, 200, 100, tmp_path)  # the rewritten file verifies
    assert capsys.readouterr().err == ""


def test_a_damaged_pretraining_is_trained_again(tmp_path, capsys):
    task = tiny_task(n=64)
    cfg = PretrainConfig(batch_size=16, epochs=1, eval_every=1)
    pre = Pretraining(cfg, task, BenchConfig(curve_samples=16), torch.device("cpu"), tmp_path, "t")
    gen, updates, _ = pre.generator(0)
    (path,) = tmp_path.glob("pretrain-*.pt")
    _flip_last_bytes(path)
    again, again_updates, _ = pre.generator(0)
    assert "pre-training seed 0 again" in capsys.readouterr().err
    assert again_updates == updates
    for a, b in zip(gen.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)  # the same training, deterministic on CPU


def test_a_damaged_checkpoint_is_ignored_and_the_cell_starts_over(tmp_path, capsys):
    path = tmp_path / "checkpoints" / "k.pt"
    save_checkpoint(path, {"trainer": {"w": torch.ones(300)}})
    assert torch.equal(load_checkpoint(path)["trainer"]["w"], torch.ones(300))
    _flip_last_bytes(path)
    assert load_checkpoint(path) is None
    assert "is damaged" in capsys.readouterr().err
