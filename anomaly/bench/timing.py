"""How every figure of the benchmark is timed: after a warm-up, the best of three runs, the device synchronised;
a mode's runs with the peak measured again beside them."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator

import torch

from anomaly.model.convlstm import FRAME_SIZE


def random_volumes(count: int, tau: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` prediction volumes of ``2*tau`` random ``uint8`` frames, as the data loader gives them: what every
    timed step runs on (the network's cost does not depend on the pixels)."""
    return torch.randint(0, 256, (count, 2 * tau, 1, FRAME_SIZE, FRAME_SIZE), dtype=torch.uint8, device=device)


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


def runs_beside(step: Callable[[], None], reference: Callable[[float], float], steps: int, device: torch.device,
                repeats: int = 3) -> Iterator[tuple[float, float, float]]:  # fmt: skip
    """``repeats`` runs of ``steps`` calls of ``step``, each as (seconds per call, ``reference(seconds)`` just before
    the run, just after it): the reference measured over as many seconds as the run lasted (the first one over
    ``steps`` calls of a probe call's length), each reading between two runs shared by both."""
    after = reference(steps * timed(step, 1, device, repeats=1))
    for _ in range(repeats):
        before = after
        seconds = timed(step, steps, device, repeats=1)
        after = reference(steps * seconds)
        yield seconds, before, after


def timed_beside(step: Callable[[], None], reference: Callable[[float], float], steps: int, device: torch.device,
                 repeats: int = 3) -> tuple[float, float]:  # fmt: skip
    """Seconds per call of ``step``, as ``timed`` takes them (the best of ``repeats`` runs of ``steps`` calls), and
    what ``reference(seconds)`` measured over as many seconds as a run lasts, just before and just after the best
    run: the higher of the two readings.

    For a ratio of two speeds on a shared machine whose own speed moves: on a 2-core VM, one gate convolution ran
    at 151-241 GFLOP/s from one call to the next (5th to 95th percentile), and for minutes both it and a training
    step ran a tenth slower than later (200 against 227 GFLOP/s, 255 against 230 ms). A run of a few calls
    catches the fast moments; a training step of 0.25 s cannot. So each side of the ratio is measured over the
    same length of time, in the same minute; the higher reading keeps the ratio conservative
    (``docs/machine_drift.py`` measures both effects).
    """
    runs = list(runs_beside(step, reference, steps, device, repeats))
    seconds, before, after = min(runs, key=lambda run: run[0])
    return seconds, max(before, after)


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """``"bf16"``: autocast to bfloat16; ``"fp32"``: as is."""
    if name == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
