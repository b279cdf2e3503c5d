"""What the machine can do: its convolution peak at the model's gate shapes, and its memory bandwidth."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from anomaly.bench.timing import timed, warm_up

GATES = ((32, 64, 55), (64, 128, 27), (128, 256, 13))  # (Cin + C, 4C, H = W) of the three ConvLSTM levels
LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


class GateConvolution:
    """A 3x3 gate convolution (padding 1) at the benchmark's batch, on random tensors: call it to run it once;
    ``gflops(steps)`` measures its rate in short runs (after a warm-up at construction), ``sustained_gflops`` in a
    run as long as a mode's."""

    def __init__(self, shape: tuple[int, int, int], memory_format: torch.memory_format, batch: int,
                 device: torch.device, dtype: torch.dtype) -> None:  # fmt: skip
        cin, cout, size = shape
        self.x = torch.rand(batch, cin, size, size, device=device, dtype=dtype).contiguous(memory_format=memory_format)
        w = torch.rand(cout, cin, 3, 3, device=device, dtype=dtype) * 0.01
        self.w = w.contiguous(memory_format=memory_format)
        self.flops = 2 * batch * cout * cin * 9 * size * size
        self.device = device
        warm_up(self, device)
        self.seconds = timed(self, 3, device, repeats=1)  # a call's length, until gflops() measures it better

    def __call__(self) -> None:
        F.conv2d(self.x, self.w, padding=1)

    def gflops(self, steps: int) -> float:
        """Its GFLOP/s: the best of three runs of ``3 * steps`` calls (each a few milliseconds)."""
        self.seconds = timed(self, steps * 3, self.device)
        return self.flops / self.seconds / 1e9

    def sustained_gflops(self, seconds: float) -> float:
        """Its GFLOP/s over one run of about ``seconds`` (at least 3 calls): as long as the run it is compared with.
        See ``docs/machine_drift.py`` for why."""
        calls = max(3, round(seconds / self.seconds))
        return self.flops / timed(self, calls, self.device, repeats=1) / 1e9


def conv_peak(batch: int, device: torch.device, dtype: torch.dtype,
              steps: int) -> tuple[dict[str, float], Callable[[float], float]]:  # fmt: skip
    """GFLOP/s of the three gate convolutions (forward, padding 1) at ``batch``, in each memory layout (the fastest
    of the six is the peak of that precision), and a function that measures the peak again, over a given number of
    seconds: the fastest of the three shapes, each in its faster layout, each sustained that long.

    Both layouts, because they differ by up to 2.5 times on a CPU (oneDNN), and compiled code picks channels-last.
    All three shapes again, because a shared machine does not slow them alike: a neighbour that slowed the
    128->256 one at 13x13 by a tenth for minutes left a test batch's speed alone.
    """
    rates, fastest = {}, {}
    for shape, (layout, memory_format) in itertools.product(GATES, LAYOUTS.items()):
        conv = GateConvolution(shape, memory_format, batch, device, dtype)
        rates[f"{shape[0]}->{shape[1]}@{shape[2]} {layout}"] = rate = conv.gflops(steps)
        if rate > fastest.get(shape, (0.0, None))[0]:
            fastest[shape] = rate, conv

    def sustained(seconds: float) -> float:
        return max(conv.sustained_gflops(seconds) for _, conv in fastest.values())

    return rates, sustained


def memory_bandwidth(device: torch.device, steps: int) -> float:
    """GB/s of a streaming add over 64 MiB fp32 buffers (two read, one written), the access pattern of the gate
    kernels: they read maps and write maps, far larger together than the caches."""
    a, b, c = (torch.rand(16 * 2**20, device=device) for _ in range(3))
    add = functools.partial(torch.add, a, b, out=c)
    warm_up(add, device)
    return 3 * a.nbytes / timed(add, steps, device) / 1e9
