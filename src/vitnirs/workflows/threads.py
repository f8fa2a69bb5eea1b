"""Pin the thread counts of torch and of the BLAS / OpenMP libraries, so a run's numbers are
reproducible on a given machine (float reductions are split by thread count: one thread and
two threads give different last digits, and a short pretraining amplifies them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["THREAD_VARIABLES", "pinned_threads"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextmanager
def pinned_threads(n: int) -> Iterator[int]:
    """Within the block: ``torch.set_num_threads(n)``, BLAS pools limited to ``n``
    (threadpoolctl) and the variables that child processes read set to ``n``; all restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    if n < 1:
        raise ValueError(f"the thread count must be at least 1; got {n}")
    saved_env = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    saved_torch = torch.get_num_threads()
    os.environ.update({k: str(n) for k in THREAD_VARIABLES})
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(saved_torch)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
