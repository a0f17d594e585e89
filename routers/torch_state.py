"""Torch modules ↔ named numpy arrays, so torch families save through safetensors and never through pickle.

Also a seeded generator helper; it never changes torch's global random state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

PREFIX_SEPARATOR = "."


def module_state(module: torch.nn.Module, prefix: str) -> dict[str, npt.NDArray[Any]]:
    """Every parameter and buffer of `module` as a numpy array named `<prefix>.<name>`."""
    return {
        f"{prefix}{PREFIX_SEPARATOR}{name}": tensor.detach().cpu().numpy().copy()
        for name, tensor in module.state_dict().items()
    }


def load_module_state(module: torch.nn.Module, state: dict[str, npt.NDArray[Any]], prefix: str) -> None:
    """Restore what `module_state` returned into a module of the same architecture (strict)."""
    head = f"{prefix}{PREFIX_SEPARATOR}"
    tensors = {k[len(head) :]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith(head)}
    module.load_state_dict(tensors, strict=True)


def generator(seed: int) -> torch.Generator:
    """A private, seeded torch generator for initialisation and shuffling."""
    return torch.Generator().manual_seed(seed)
