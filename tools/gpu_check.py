"""CUDA check and timing: every registered method's trainer on CUDA, evaluation, rollouts.

Run on a GPU machine from the project root: `python tools/gpu_check.py [quick,paper]` (writes
$OUT/gpu_check.json when OUT is set; the argument picks the presets timed, default both).
Each trainer's checkpoint round trip (state_dict + CUDA RNG state into a fresh trainer) is
checked too: the next update's generator must match the uninterrupted one. Per-update times
of the `paper` preset come from a few updates per method (SeqGAN's discriminator pre-training
shortened to one d-step for the check).
"""

import io
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, ".")
from bench.metrics.evaluate import EvalSettings, curve_point, final_metrics  # noqa: E402
from methods import METHODS, mle  # noqa: E402
from methods.base import TrainContext  # noqa: E402
from methods.config import build  # noqa: E402
from methods.discriminator import Discriminator  # noqa: E402
from methods.generator import LSTMGenerator  # noqa: E402
from methods.rollout import Workspace, fast_rollout_rewards, reference_rollout_rewards  # noqa: E402
from methods.seqgan import Config  # noqa: E402
from oracle.data import OracleSpec, load_task  # noqa: E402

DEV = torch.device("cuda")


def timed_ms(f, n: int) -> float:
    f()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        f()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1000


def resume_gap(spec, cfg, task, trainer, rng) -> float:
    """Max |difference| of the generator after one more update, uninterrupted vs. resumed from
    the trainer's state_dict and the RNG state (0.0 when CUDA kernels are deterministic)."""
    buffer = io.BytesIO()  # through torch.save/load as bench/cells/checkpoint.py: no shared tensors
    torch.save({"trainer": trainer.state_dict(), "rng": rng.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, map_location="cpu", weights_only=True)
    state, rng_state = saved["trainer"], saved["rng"]
    gen = LSTMGenerator().to(DEV)
    rng2 = torch.Generator(device=DEV).manual_seed(99)
    resumed = spec.make_trainer(cfg, TrainContext(task, DEV, rng2, 0, fresh=False), gen)
    resumed.load_state_dict(state)
    rng2.set_state(rng_state)
    trainer.step()
    resumed.step()
    pairs = zip(trainer.generator.parameters(), resumed.generator.parameters(), strict=True)
    return max((a - b).abs().max().item() for a, b in pairs)


def method_rates(task, gen0, presets) -> dict:
    res = {}
    for preset in presets:
        for name, spec in METHODS.items():
            overrides = dict(spec.presets[preset])
            if preset == "paper" and name.startswith("seqgan"):
                overrides["d_pretrain_steps"] = 1
            cfg = build(spec.config, name, overrides, {})
            gen = LSTMGenerator().to(DEV)
            gen.load_state_dict(gen0.state_dict())
            rng = torch.Generator(device=DEV).manual_seed(0)
            t0 = time.perf_counter()
            trainer = spec.make_trainer(cfg, TrainContext(task, DEV, rng, 0), gen)
            setup_s = time.perf_counter() - t0
            ms = timed_ms(trainer.step, 3)
            finite = all(v == v for v in trainer.step().values())
            gap = resume_gap(spec, cfg, task, trainer, rng)
            res[f"{preset}/{name}"] = dict(
                setup_s=setup_s, ms_per_update=ms, finite=finite, resume_max_abs_diff=gap
            )
            print(preset, name, res[f"{preset}/{name}"], flush=True)
    return res


def main() -> None:
    task = load_task(OracleSpec(), 10000, 10000, Path("/tmp/cache"))
    task.oracle.to(DEV)
    gen0 = LSTMGenerator().init_normal_(0.1, torch.Generator().manual_seed(0)).to(DEV)
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    presets = sys.argv[1].split(",") if len(sys.argv) > 1 else ["quick", "paper"]
    out["methods"] = method_rates(task, gen0, presets)
    ctx = TrainContext(task, DEV, torch.Generator(device=DEV).manual_seed(0), 0)
    out["mle_ms_per_update"] = timed_ms(mle.MLETrainer(mle.Config(), ctx, gen0).step, 50)
    ev = EvalSettings(DEV, 1, 2000, 10000, 1000, sweep_alphas=(1.0,), sweep_samples=1000)
    out["curve_point_ms"] = timed_ms(lambda: curve_point(gen0, task, ev), 2)
    out["final_metrics_ms"] = timed_ms(lambda: final_metrics(gen0, task, ev), 1)
    cfg = Config()
    sizes, maps = cfg.discriminator_filter_sizes, cfg.discriminator_num_filters
    discriminator = Discriminator(5000, 20, cfg.discriminator_emb_dim, sizes, maps)
    discriminator = discriminator.init_original_(torch.Generator().manual_seed(1)).to(DEV).eval()
    x = gen0.sample(64, rng=torch.Generator(device=DEV).manual_seed(2))
    rng = torch.Generator(device=DEV).manual_seed(3)
    with torch.no_grad():
        ref = timed_ms(lambda: reference_rollout_rewards(gen0, discriminator, x, 16, rng), 3)
        ws, chunk = Workspace(), cfg.rollout_chunk
        fast = timed_ms(
            lambda: fast_rollout_rewards(
                gen0, discriminator, x, 16, rng, chunk=chunk, workspace=ws
            ),
            10,
        )
    out |= {"rollout_reference_ms": ref, "rollout_fast_ms": fast}
    print(json.dumps(out, indent=1))
    Path(os.environ.get("OUT", "/tmp"), "gpu_check.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
