"""Training helpers shared by the small torch families: seeded init, the weighted cell loss, early stopping.

Math and loops only: no family logic, no I/O, and torch's global RNG is never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from routers.cost_model import mean_qualities
from routers.dataset import TrainingSet
from routers.torch_state import generator


def seeded_init(module: torch.nn.Module, seed: int) -> None:
    """Xavier-uniform matrices and zero vectors, drawn in name order from a private seeded generator."""
    rng = generator(seed)
    with torch.no_grad():
        for _, tensor in sorted(module.named_parameters()):
            if tensor.dim() >= 2:
                torch.nn.init.xavier_uniform_(tensor, generator=rng)
            else:
                tensor.zero_()


def cell_loss(logits: torch.Tensor, quality: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of (prompt, model) cells against soft quality, self-normalised by the weights
    (0 for unknown cells, whose NaN quality is ignored; 1/propensity for logged traffic)."""
    target = torch.nan_to_num(quality, nan=0.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * weight).sum() / weight.sum().clamp_min(1e-12)


def train_with_early_stopping(
    net: torch.nn.Module,
    run_epoch: Callable[[], None],
    validation_loss: Callable[[], float] | None,
    epochs: int,
    patience: int,
) -> None:
    """Run up to `epochs` epochs; with a validation loss, stop after `patience` epochs without a better one
    and restore the best epoch's weights. Leaves `net` in eval mode."""
    best, best_loss, stale = copy.deepcopy(net.state_dict()), float("inf"), 0
    for _ in range(epochs):
        net.train()
        run_epoch()
        if validation_loss is None:
            continue
        net.eval()
        with torch.no_grad():
            loss = validation_loss()
        if loss < best_loss:
            best, best_loss, stale = copy.deepcopy(net.state_dict()), loss, 0
        elif (stale := stale + 1) >= patience:
            break
    if validation_loss is not None:
        net.load_state_dict(best)
    net.eval()


def train_minibatches(
    net: torch.nn.Module,
    rows: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validation_loss: Callable[[], float] | None,
    *,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    epochs: int,
    patience: int,
    seed: int,
) -> None:
    """AdamW over batches of shuffled row indices (`batch_loss(indices)`), early-stopped on the validation
    loss when there is one, on one thread; the shuffling generator is private and seeded."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    rng = generator(seed)

    def run_epoch() -> None:
        for indices in torch.split(torch.randperm(rows, generator=rng), batch_size):
            optimizer.zero_grad()
            torch.autograd.backward(batch_loss(indices))
            optimizer.step()

    with single_thread():
        train_with_early_stopping(net, run_epoch, validation_loss, epochs, patience)


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread while training a small net: its ops are too small to split, and on busy cores
    the threads' spin-waiting makes training several times slower. The previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def prior_logits(train: TrainingSet) -> torch.Tensor:
    """Logit of each model's weighted mean quality: a bias that starts every model at its base rate."""
    prior = np.clip(mean_qualities(train), 0.02, 0.98)
    return torch.from_numpy(np.log(prior / (1.0 - prior)).astype(np.float32))
