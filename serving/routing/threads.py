"""Thread pools of the numeric libraries a router runs on (BLAS, OpenMP, torch), sized for a server.

numpy's BLAS starts a thread per core for every product; on a gateway that already runs many requests at once
those threads spin on tiny matrices and halve the requests served per core (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import sys


def limit_inference_threads(threads: int) -> None:
    """Cap every loaded BLAS/OpenMP pool, and torch's when a router brought it in, at `threads`."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
