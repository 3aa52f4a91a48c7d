"""The optimal discriminator, exactly: D*(Y) = P(Y) / (P(Y) + G(Y)) = sigmoid(log P(Y) - log G(Y)).

Only a synthetic task can have it: the oracle P and the generator G both give exact sequence
likelihoods, so the discriminator every GAN's learned D approximates is computed, not trained.
A policy-gradient method run with it (`<method>-oracle-d` in the registry) has its adversary's
error switched off: no discriminator is trained, and what is left is the estimator itself.
`OracleTrainer` is methods/policy.py's step with D* as the judge (its logit log P - log G is
`sequence_logit`); `OracleRolloutTrainer` adds SeqGAN's Monte-Carlo rollout scored by D*. Why
the logit reward is exactly the gradient of -KL(G||P) and MaliGAN's weights become exact:
docs/methods.md, "The oracle discriminator".
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Budget, TrainContext
from methods.generator import LSTMGenerator
from methods.policy import PolicyConfig, PolicyTrainer, RolloutFields, sync
from methods.rollout import StepTables, Workspace, completions_scored


class ExactScorer:
    """Log-likelihoods of many completions of shared prefixes under one LSTM model, exactly:
    the prefix's part is read off one teacher-forced pass over the samples (`prefix`), only the
    suffix is run per completion (`suffix`), from the state the samples' pass cached."""

    @torch.no_grad()
    def __init__(self, model: LSTMGenerator, x: Tensor) -> None:
        self.steps = StepTables(model)
        self.read_out = torch.cat([model.out.weight.T, model.out.bias[None]])  # (H+1, V), nats
        # states[g]: (h, c), (B, H) each, after reading x[:, :g]; weights[:, g] ∝ model(x_g | x_<g)
        self.states, self.weights = self.steps.encode(x)  # weights (B, T, V)
        logp = model.token_log_probs(x)  # (B, T)
        self.prefix = F.pad(logp.cumsum(dim=1), (1, 0))  # (B, T+1): [:, g] = log model(x_{1:g})

    def token_log_prob(self, h: Tensor, tokens: Tensor) -> Tensor:
        """log model(token | state h): (M,) for h (M, H) and tokens (M,)."""
        logits = torch.mm(F.pad(h, (0, 1), value=1.0), self.read_out)  # (M, V)
        return logits.gather(1, tokens[:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)

    def suffix(self, y: Tensor, g: int, rows: slice, n: int) -> Tensor:
        """(n*b,) log model(y_g, ..., y_T | y_{1:g}) of completions y (n*b, T), row i*b + j a
        completion of sample rows[j]'s prefix of length g."""
        h, c = (s[rows].repeat(n, 1) for s in self.states[g])  # (n*b, H)
        total = self.token_log_prob(h, y[:, g])  # (n*b,)
        for t in range(g + 1, y.shape[1]):
            h, c = self.steps.step(y[:, t - 1], h, c)
            total += self.token_log_prob(h, y[:, t])
        return total


@torch.no_grad()
def oracle_rollout_rewards(
    generator: LSTMGenerator,
    oracle: LSTMGenerator,
    x: Tensor,
    n_rollouts: int,
    rng: torch.Generator,
    chunk: int = 1024,
    workspace: Workspace | None = None,
) -> Tensor:
    """SeqGAN's Q (B, T) with D* as the discriminator: [:, g-1] is the mean of D*(Y) over
    n_rollouts completions of x[:, :g] drawn from G (the fast rollout's draws, in its order and
    chunking: methods/rollout.py), [:, T-1] is D*(x) itself."""
    batch, seq_len = x.shape
    workspace = workspace or Workspace()
    g_scores, p_scores = ExactScorer(generator, x), ExactScorer(oracle, x)
    q = torch.empty(batch, seq_len, device=x.device)
    per_chunk = max(1, chunk // n_rollouts)
    for lo in range(0, batch, per_chunk):
        rows = slice(lo, lo + per_chunk)
        for g in range(1, seq_len):
            state = tuple(s[rows] for s in g_scores.states[g])  # (b, H) each
            y = g_scores.steps.complete(
                x[rows], g, g_scores.weights[rows, g], state, n_rollouts, rng, workspace
            )  # (n*b, T)
            logit = (p_scores.prefix[rows, g] - g_scores.prefix[rows, g]).repeat(n_rollouts)
            logit += p_scores.suffix(y, g, rows, n_rollouts) - g_scores.suffix(
                y, g, rows, n_rollouts
            )  # (n*b,): log P(y) - log G(y)
            q[rows, g - 1] = torch.sigmoid(logit).view(n_rollouts, -1).mean(dim=0)
    q[:, -1] = torch.sigmoid(p_scores.prefix[:, -1] - g_scores.prefix[:, -1])  # D*(x)
    return q


def without_discriminator(presets: dict[str, dict], config: type) -> dict[str, dict]:
    """A learned-D method's presets reduced to the fields of `config` (an oracle-D variant's:
    its generator and rollout fields; it has no discriminator to configure)."""
    names = set(config.__dataclass_fields__)
    return {name: {k: v for k, v in p.items() if k in names} for name, p in presets.items()}


def budget(cfg: PolicyConfig, vocab_size: int, seq_len: int, n_train: int) -> Budget:
    """The generator updates alone: D* is computed, never trained, and has no parameters."""
    return Budget(cfg.updates, 0, 0)


class OracleTrainer(PolicyTrainer):
    """methods/policy.py's step judged by D*: nothing is trained between updates."""

    def __init__(self, cfg: PolicyConfig, ctx: TrainContext, generator: LSTMGenerator) -> None:
        super().__init__(cfg, ctx, generator)
        self.oracle = copy.deepcopy(ctx.task.oracle).to(ctx.device).requires_grad_(False)

    @torch.no_grad()
    def sequence_logit(self, x: Tensor) -> Tensor:
        """(B,) logit D*(Y) = log P(Y) - log G(Y) of samples x (B, T)."""
        return self.oracle.log_prob(x) - self.generator.log_prob(x)


class OracleRolloutTrainer(OracleTrainer):
    """`OracleTrainer` with SeqGAN's Monte-Carlo rollout, every completion scored by D*."""

    def __init__(self, cfg: RolloutFields, ctx: TrainContext, generator: LSTMGenerator) -> None:
        super().__init__(cfg, ctx, generator)
        self.workspace = Workspace()

    def rollout_rewards(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Q (B, T) for samples x (B, T), and the rollout's perf scalars."""
        sync(self.device)
        t0 = time.perf_counter()
        q = oracle_rollout_rewards(
            self.generator,
            self.oracle,
            x,
            self.cfg.rollout_num,
            self.rng,
            self.cfg.rollout_chunk,
            self.workspace,
        )
        sync(self.device)
        seconds = time.perf_counter() - t0
        completions = completions_scored(x.shape[0], x.shape[1], self.cfg.rollout_num)
        perf = {"perf/rollout_ms": 1000 * seconds, "perf/completions_per_s": completions / seconds}
        return q, perf | {"train/d_real": q[:, -1].mean().item()}
