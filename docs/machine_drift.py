"""How this machine's own speed moves, the reason ``anomaly.bench`` measures a mode's peak beside its runs.

``python docs/machine_drift.py`` (about 5 minutes on 2 CPU cores) prints:

1. the 128->256 gate convolution at 13x13 (batch 4, channels-last, fp32), timed call by call in three rounds of
   2,000 calls: the 5th, 50th and 95th percentiles of its GFLOP/s, and the best 30-call run, which is how the
   peak at the start is timed (the best of three runs of ``3 * steps`` calls);
2. 60 rounds of 100 calls of that convolution, one compiled fp32 training step of 4 (tau 5) and 100 calls again:
   each round's GFLOP/s and step time, and their correlation. On a shared VM both move together for minutes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from anomaly.bench.modes import build, training_step
from anomaly.bench.peaks import GateConvolution

CPU = torch.device("cpu")


def call_by_call(conv: GateConvolution) -> None:
    for _ in range(3):
        seconds = []
        for _ in range(2000):
            started = time.perf_counter()
            conv()
            seconds.append(time.perf_counter() - started)
        rates = conv.flops / np.array(seconds) / 1e9
        runs = [30 * conv.flops / sum(seconds[i : i + 30]) / 1e9 for i in range(0, 2000 - 30, 30)]
        p5, p50, p95 = np.percentile(rates, [5, 50, 95])
        print(f"call by call: {p5:.0f} / {p50:.0f} / {p95:.0f} GFLOP/s (5th / 50th / 95th percentile); "
              f"best 30-call run {max(runs):.0f}")  # fmt: skip


def beside_training(conv: GateConvolution) -> None:
    module = build(5, CPU, compiled=True)
    step = training_step(module, torch.randint(0, 256, (4, 10, 1, 227, 227), dtype=torch.uint8))

    def rate() -> float:
        started = time.perf_counter()
        for _ in range(100):
            conv()
        return 100 * conv.flops / (time.perf_counter() - started) / 1e9

    for _ in range(5):
        step()
    rows = []
    for _ in range(60):
        before = rate()
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
        rows.append(((before + rate()) / 2, seconds * 1e3))
        print(f"{rows[-1][0]:5.0f} GFLOP/s  {rows[-1][1]:5.0f} ms a step", flush=True)
    peaks, steps = np.array(rows).T
    print(f"correlation of the convolution's rate with the step's speed: {np.corrcoef(peaks, 1 / steps)[0, 1]:.2f}")


if __name__ == "__main__":
    gate = GateConvolution((128, 256, 13), torch.channels_last, 4, CPU, torch.float32)
    call_by_call(gate)
    beside_training(gate)
