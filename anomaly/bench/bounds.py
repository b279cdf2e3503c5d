"""What no mode can beat: the network's convolutions timed alone, and the bytes inductor's kernels move.

The ceiling is the sum of every convolution call of a training step (forward + backward) or of a test batch,
each timed on its own in its faster memory layout: the gap between it and a mode is everything else (gate
arithmetic, copies, the optimiser, Python). For a compiled mode the bound adds the bytes that inductor's generated
kernels read and write, by inductor's own count, at the machine's memory bandwidth: those kernels do a few
operations per element they touch, so memory sets their speed.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from anomaly.bench.peaks import LAYOUTS
from anomaly.bench.timing import random_volumes, timed, warm_up
from anomaly.lightning.module import AnomalyModule


@dataclass(frozen=True)
class Convolution:
    """One convolution call of the network: its arguments' shapes, and which gradients its backward computes."""

    input: tuple[int, ...]
    weight: tuple[int, ...]
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    transposed: bool
    output_padding: tuple[int, ...]
    input_grad: bool
    weight_grad: bool


class ConvolutionRecorder(TorchDispatchMode):
    """Counts the ``aten.convolution`` calls that run inside it (every conv and deconv of the network)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[Convolution] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204  (torch's signature)
        if func is torch.ops.aten.convolution.default:
            x, w, b, stride, padding, _, transposed, output_padding, _ = args
            shapes = (tuple(x.shape), tuple(w.shape), b is not None, tuple(stride), tuple(padding), transposed)
            self.calls[Convolution(*shapes, tuple(output_padding), x.requires_grad, w.requires_grad)] += 1
        return func(*args, **(kwargs or {}))


def model_convolutions(module: AnomalyModule, tau: int, batch: int, test_batch: int,
                       device: torch.device) -> tuple[Counter, Counter]:  # fmt: skip
    """The convolution calls of one training step at ``batch`` and of one test batch, as the network runs them."""
    volume = random_volumes(batch, tau, device)
    with ConvolutionRecorder() as train:
        module.train().loss(volume)
    windows = random_volumes(test_batch, tau, device)
    with torch.no_grad(), ConvolutionRecorder() as test:
        module.eval().window_errors(windows)
    return train.calls, test.calls


class ConvolutionsAlone:
    """Every call of ``calls`` ready to run on random tensors (with its backward where ``backward``), in both
    memory layouts, warmed up: ``seconds(steps)`` times them."""

    def __init__(self, calls: Counter[Convolution], backward: bool, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.calls: list[tuple[int, list[Callable[[], None]]]] = []  # (count, the call in each layout)
        for conv, count in calls.items():
            b = torch.zeros(conv.weight[1 if conv.transposed else 0], device=device, dtype=dtype) if conv.bias else None
            args = (conv.stride, conv.padding, [1, 1], conv.transposed, conv.output_padding, 1)
            bias_sizes = None if b is None else list(b.shape)
            mask = [conv.input_grad, conv.weight_grad, conv.bias and conv.weight_grad]
            layouts = []
            for memory_format in LAYOUTS.values():
                x = torch.rand(conv.input, device=device, dtype=dtype).contiguous(memory_format=memory_format)
                w = torch.rand(conv.weight, device=device, dtype=dtype) * 0.01
                w = w.contiguous(memory_format=memory_format)
                y = torch.ops.aten.convolution(x, w, b, *args)

                def step(x=x, w=w, b=b, y=y, args=args, bias_sizes=bias_sizes, mask=mask) -> None:
                    torch.ops.aten.convolution(x, w, b, *args)
                    if backward:
                        torch.ops.aten.convolution_backward(y, x, w, bias_sizes, *args, mask)

                warm_up(step, device, seconds=0.1)
                layouts.append(step)
            self.calls.append((count, layouts))

    def seconds(self, steps: int, repeats: int = 3) -> float:
        """Seconds that the calls take alone: each, in the faster of its two layouts, timed as ``timed`` times
        (``steps`` calls, the best of ``repeats`` runs), times its count."""
        return sum(count * min(timed(step, steps, self.device, repeats) for step in layouts)
                   for count, layouts in self.calls)  # fmt: skip


@contextlib.contextmanager
def inductor_kernel_bytes() -> Iterator[dict[str, int | None]]:
    """Yields a dict whose ``"bytes"``, on exit, holds the bytes that the kernels inductor generated inside read
    and write: inductor's own count, each buffer a kernel touches once (a floor on its memory traffic), for
    every graph compiled inside (compile caches off, so that each is compiled and counted). Library calls
    (convolutions, and ops inductor does not generate) are not counted. None where inductor counted nothing at
    all (no graph compiled, or a torch whose private metrics moved), never a silent 0."""
    from torch._inductor import metrics
    from torch._inductor.scheduler import ExternKernelSchedulerNode, NopKernelSchedulerNode

    counted: dict[str, int | None] = {"bytes": None}
    log = logging.getLogger("torch._inductor.compile_fx.__inductor_metrics")  # inductor counts while it logs INFO
    level = log.level
    log.setLevel(logging.INFO)
    metrics.reset()
    try:
        with torch.compiler.config.patch(force_disable_caches=True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "dynamo_pgo force disabled")  # what we asked for, said once a graph
            yield counted
    finally:
        log.setLevel(level)
    library = (ExternKernelSchedulerNode, NopKernelSchedulerNode)
    if metrics.nodes_num_elem:  # each scheduled node (kernel or library call) with its bytes // 4
        counted["bytes"] = sum(4 * n for node, n in metrics.nodes_num_elem if not isinstance(node, library))
