"""What the machine can do: its convolution peak at the model's gate shapes, and its memory bandwidth."""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn.functional as F

from anomaly.bench.timing import timed, warm_up

GATES = ((32, 64, 55), (64, 128, 27), (128, 256, 13))  # (Cin + C, 4C, H = W) of the three ConvLSTM levels
LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def conv_peak(batch: int, device: torch.device, dtype: torch.dtype, steps: int) -> dict[str, float]:
    """GFLOP/s of the three gate convolutions (forward, padding 1) at ``batch``, in each memory layout.

    Both layouts, because they differ by up to 2.5 times on a CPU (oneDNN), and compiled code picks channels-last.
    The fastest of the six is the peak of that precision.
    """
    rates = {}
    for (cin, cout, size), (layout, memory_format) in itertools.product(GATES, LAYOUTS.items()):
        x = torch.rand(batch, cin, size, size, device=device, dtype=dtype).contiguous(memory_format=memory_format)
        w = (torch.rand(cout, cin, 3, 3, device=device, dtype=dtype) * 0.01).contiguous(memory_format=memory_format)
        conv = functools.partial(F.conv2d, x, w, padding=1)
        warm_up(conv, device)
        flops = 2 * batch * cout * cin * 9 * size * size
        rates[f"{cin}->{cout}@{size} {layout}"] = flops / timed(conv, steps * 3, device) / 1e9
    return rates


def memory_bandwidth(device: torch.device, steps: int) -> float:
    """GB/s of a streaming add over 64 MiB fp32 buffers (two read, one written), the access pattern of the gate
    kernels: they read maps and write maps, far larger together than the caches."""
    a, b, c = (torch.rand(16 * 2**20, device=device) for _ in range(3))
    add = functools.partial(torch.add, a, b, out=c)
    warm_up(add, device)
    return 3 * a.nbytes / timed(add, steps, device) / 1e9
