"""The CNN discriminator's update: the unfolded convolutions and fused Adam against Conv1d and
the per-tensor Adam they replaced, in values and (with pytest-benchmark) in time.

`Discriminator.features` computes each width's convolution as one matrix product of unfolded
windows and applies the ReLU after the max over positions; `ConvReference` below is the code it
replaced (Conv1d, ReLU, max). PGTrainer's D optimiser is Adam with `fused=True`. The tests check
that both are the same functions up to float32 rounding: features, logits and every gradient
within 1e-5 absolute + 1e-4 relative (measured at the paper's size: at most ~1e-5 absolute), ties
in the max included, and parameters after Adam steps within 1e-6.

The benchmark: one D update (forward, loss, backward, Adam step) at the paper's size (V = 5000,
T = 20, 64 embedding dims, widths 1-10, 15, 20 with 100-200 maps: 7.05M parameters, batch 64).
Run: `.venv/bin/pytest tests/test_discriminator_benchmark.py --benchmark-only -p no:xdist`
(group "discriminator-update" compares the whole update; "discriminator-forward-backward" the
network alone, Adam left out). With `--benchmark-disable` each body runs once.
"""

import pytest
import torch
import torch.nn.functional as F

from methods.discriminator import Discriminator
from methods.seqgan import Config as SeqGANConfig

PAPER = SeqGANConfig()
V, T, BATCH = 5000, 20, 64
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


class ConvReference(Discriminator):
    """The discriminator as it was: one Conv1d per width, ReLU, max over positions."""

    def features(self, x):
        e = self.embedding(x).transpose(1, 2)  # (B, E, T)
        return torch.cat([F.relu(conv(e)).amax(dim=-1) for conv in self.convs], dim=1)  # (B, F)


def pair(vocab, seq_len, emb, widths, maps, seed=0):
    """The current discriminator and the reference, with the same weights."""
    new = Discriminator(vocab, seq_len, emb, widths, maps)
    new.init_original_(torch.Generator().manual_seed(seed))
    old = ConvReference(vocab, seq_len, emb, widths, maps)
    old.load_state_dict(new.state_dict())
    return new, old


def paper_pair():
    return pair(
        V,
        T,
        PAPER.discriminator_emb_dim,
        PAPER.discriminator_filter_sizes,
        PAPER.discriminator_num_filters,
    )


def loss_and_grads(d, x, labels, seed=1):
    """D's training loss (dropout from a fixed stream) and every parameter's gradient."""
    d.zero_grad(set_to_none=True)
    loss, _ = d.loss(x, labels, 0.2, torch.Generator().manual_seed(seed))
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in d.named_parameters()}


def batch(n, vocab, seq_len, seed=2):
    rng = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, seq_len), generator=rng)
    return x, torch.randint(0, 2, (n,), generator=rng)


@pytest.mark.parametrize(
    "sizes",
    [
        (50, 12, 8, (1, 2, 5, 12), (3, 4, 5, 2)),  # a width equal to T: one window
        (7, 6, 4, (2, 3), (6, 6)),  # a tiny vocabulary: repeated windows, ties in the max
    ],
)
def test_features_logits_and_gradients_match_conv1d(sizes):
    new, old = pair(*sizes)
    x, labels = batch(16, sizes[0], sizes[1])
    torch.testing.assert_close(new.features(x), old.features(x), **TOLERANCE)
    torch.testing.assert_close(new(x), old(x), **TOLERANCE)
    loss_new, grads_new = loss_and_grads(new, x, labels)
    loss_old, grads_old = loss_and_grads(old, x, labels)
    torch.testing.assert_close(loss_new, loss_old, **TOLERANCE)
    assert grads_new.keys() == grads_old.keys()
    for name in grads_new:
        torch.testing.assert_close(grads_new[name], grads_old[name], **TOLERANCE, msg=name)


def test_ties_split_the_gradient_as_conv1d_does():
    # every window of a constant sequence is the same: the max ties at every position, and
    # both implementations share the gradient evenly among them (amax's rule)
    new, old = pair(5, 8, 4, (1, 3), (4, 4))
    x = torch.full((3, 8), 2)
    labels = torch.tensor([1, 0, 1])
    _, grads_new = loss_and_grads(new, x, labels)
    _, grads_old = loss_and_grads(old, x, labels)
    for name in grads_new:
        torch.testing.assert_close(grads_new[name], grads_old[name], **TOLERANCE, msg=name)
    assert grads_new["convs.0.weight"].abs().sum() > 0  # a real gradient, not two zeros


def test_paper_size_matches_conv1d():
    new, old = paper_pair()
    x, labels = batch(BATCH, V, T)
    torch.testing.assert_close(new.features(x), old.features(x), **TOLERANCE)
    _, grads_new = loss_and_grads(new, x, labels)
    _, grads_old = loss_and_grads(old, x, labels)
    for name in grads_new:
        torch.testing.assert_close(grads_new[name], grads_old[name], **TOLERANCE, msg=name)


def test_fused_adam_steps_match_the_per_tensor_loop():
    new, old = pair(50, 12, 8, (1, 2, 5), (3, 4, 5))
    fused = torch.optim.Adam(new.parameters(), lr=1e-3, fused=True)
    loop = torch.optim.Adam(old.parameters(), lr=1e-3)
    for step in range(5):
        x, labels = batch(16, 50, 12, seed=10 + step)
        for d, opt in ((new, fused), (old, loop)):
            loss_and_grads(d, x, labels, seed=step)
            opt.step()
    for (name, p), q in zip(new.named_parameters(), old.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
        assert not torch.equal(p, pair(50, 12, 8, (1, 2, 5), (3, 4, 5))[0].state_dict()[name])


def update(d, opt, x, labels, rng):
    loss, _ = d.loss(x, labels, 0.2, rng)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


IMPLEMENTATIONS = {
    # name: (discriminator class index in pair(): 0 current, 1 reference; fused Adam)
    "conv1d + per-tensor adam (before)": (1, False),
    "unfolded + fused adam (now)": (0, True),
}


@pytest.mark.benchmark(group="discriminator-update")
@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
def test_update_cost_at_paper_size(benchmark, impl):
    which, fused = IMPLEMENTATIONS[impl]
    d = paper_pair()[which]
    opt = torch.optim.Adam(d.parameters(), lr=1e-4, fused=fused)
    x, labels = batch(BATCH, V, T)
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):  # warm-up: Adam's state allocated, allocator settled
        update(d, opt, x, labels, rng)
    loss = benchmark.pedantic(lambda: update(d, opt, x, labels, rng), rounds=20, iterations=1)
    assert 0 < loss < 10


@pytest.mark.benchmark(group="discriminator-forward-backward")
@pytest.mark.parametrize("impl", ["conv1d (before)", "unfolded (now)"])
def test_forward_backward_cost_at_paper_size(benchmark, impl):
    d = paper_pair()[0 if impl.startswith("unfolded") else 1]
    x, labels = batch(BATCH, V, T)
    loss_and_grads(d, x, labels)
    loss, _ = benchmark.pedantic(lambda: loss_and_grads(d, x, labels), rounds=20, iterations=1)
    assert 0 < loss.item() < 10
