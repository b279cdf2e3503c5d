"""How this machine's own speed moves, the reason ``anomaly.bench`` measures a mode's peak beside its runs.

``python docs/machine_drift.py`` (about 5 minutes on 2 CPU cores) prints:

1. the 128->256 gate convolution at 13x13 (batch 4, channels-last, fp32), timed call by call in three rounds of
   2,000 calls: the 5th, 50th and 95th percentiles of its GFLOP/s, and the best 30-call run, which is how the
   peak at the start is timed (the best of three runs of ``3 * steps`` calls);
2. 30 rounds of 10 compiled fp32 training steps of 4 (tau 5), each with the peak measured just before and just
   after it as ``anomaly.bench`` measures a mode's (the three gate convolutions, each as long as the 10 steps):
   each round's step time, peak and fraction of the peak, the fractions of the fastest and slowest third of the
   rounds, and the correlation of the peak with the step's speed. On a shared VM both move together for minutes,
   but not by as much: a slow spell slows a training step more than the compute-bound convolution.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from anomaly.bench.modes import build, count_flops, training_step
from anomaly.bench.peaks import GateConvolution, conv_peak
from anomaly.bench.timing import random_volumes, runs_beside

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


def beside_training(rounds: int = 30, steps: int = 10) -> None:
    """The benchmark's own ratio, round by round in one process: ``steps`` compiled fp32 training steps of 4, with
    the peak sustained as long just before and just after them (``conv_peak``'s, as ``anomaly.bench`` measures a
    mode's, ``runs_beside``), and the step's fraction of the higher of the two readings."""
    _, sustained = conv_peak(4, CPU, torch.float32, steps)
    flops = 4 * count_flops(build(5, CPU), 5, CPU)[0]
    step = training_step(build(5, CPU, compiled=True), random_volumes(4, 5))
    for _ in range(5):
        step()
    rows = []
    for seconds, before, after in runs_beside(step, sustained, steps, CPU, repeats=rounds):
        peak = max(before, after)
        rows.append((seconds * 1e3, peak, flops / seconds / 1e9 / peak))
        print(f"{seconds * 1e3:5.0f} ms a step  peak {peak:4.0f} GFLOP/s  {100 * rows[-1][2]:4.1f}% of it", flush=True)
    ms, peaks, fractions = np.array(rows).T
    order, third = np.argsort(ms), max(1, rounds // 3)
    for name, picked in (("fastest", order[:third]), ("slowest", order[-third:])):
        print(f"the {name} third of the rounds: {ms[picked].min():.0f}-{ms[picked].max():.0f} ms a step, peak "
              f"{peaks[picked].min():.0f}-{peaks[picked].max():.0f} GFLOP/s, {100 * fractions[picked].min():.1f}-"
              f"{100 * fractions[picked].max():.1f}% of it")  # fmt: skip
    print(f"correlation of the peak with the step's speed: {np.corrcoef(peaks, 1 / ms)[0, 1]:.2f}")


if __name__ == "__main__":
    call_by_call(GateConvolution((128, 256, 13), torch.channels_last, 4, CPU, torch.float32))
    beside_training()
