"""How every figure of the benchmark is timed: after a warm-up, the best of three runs, the device synchronised."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def warm_up(step: Callable[[], object], device: torch.device, seconds: float = 0.3) -> None:
    """Call ``step`` for at least ``seconds`` (and 3 times): the first calls of a shape pick and build its kernel."""
    started = time.perf_counter()
    for calls in itertools.count(1):
        step()
        synchronize(device)
        if calls >= 3 and time.perf_counter() - started >= seconds:
            return


def timed(step: Callable[[], None], steps: int, device: torch.device, repeats: int = 3) -> float:
    """Seconds per call of ``step``, after the caller's warm-up: the best of ``repeats`` runs of ``steps`` calls.

    The peak, the ceiling and every mode take this same statistic, so that their ratios compare like with like;
    the best run is the one the machine's other load (a shared 2-core VM's neighbours) disturbed least.
    """
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = min(best, (time.perf_counter() - started) / steps)
    return best


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """``"bf16"``: autocast to bfloat16; ``"fp32"``: as is."""
    if name == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
