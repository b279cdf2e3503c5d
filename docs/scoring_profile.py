"""Where a compiled fp32 test batch and training step go, and what the gate arithmetic costs (docs/benchmarks.md).

``python docs/scoring_profile.py``: profiles 5 test batches of 8 (tau 5) after warm-up, with inductor's kernels
named (the three costliest printed), and 5 training steps of 4 (forward, backward, Adam); then times the cell's gate
arithmetic at the 55x55 level (batch 8) compiled alone, beside the same reads and writes with each sigmoid and tanh
replaced by a multiplication, and by an exp without a division; last, the Eq. 2 frame norms of a test batch's
output (a crop of the sub-pixel deconv3's frames, as the network makes it) taken over each frame flattened, as
before 7295b73, and over its own dimensions, as ``anomaly.protocol.scoring.frame_errors`` takes them, compiled and
eager.
"""

from __future__ import annotations

import re
import time

import torch
import torch._inductor.config as inductor
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from anomaly.bench.modes import build, training_step
from anomaly.bench.timing import random_volumes
from anomaly.lightning.module import AnomalyModule
from anomaly.model.convlstm import compile_options
from anomaly.protocol.scoring import frame_errors

inductor.cpp.enable_kernel_profile = True


def profiled_module() -> AnomalyModule:
    """The compiled module as ``model.compile=true`` builds it, but with its graphs compiled without inductor's C++
    wrapper: the wrapper calls the convolutions' backward past the profiler, which then sees neither them nor
    the kernels apart from the graph's own time. (Python's wrapper adds a few ms a step to what is profiled.)"""
    module = build(5, torch.device("cpu"), compiled=True)
    options = {**compile_options(), "cpp_wrapper": False}
    module._graphs = {f.__name__: torch.compile(f, options=options) for f in (module._loss, module._errors)}
    return module


def profile_scoring() -> None:
    module = profiled_module()
    module.eval()
    windows = random_volumes(8, 5)
    with torch.no_grad():
        for _ in range(3):
            module.window_errors(windows)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                module.window_errors(windows)
    summarise(prof, "a test batch of 8")


def profile_training() -> None:
    module = profiled_module()
    step = training_step(module, random_volumes(4, 5))

    for _ in range(4):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
    summarise(prof, "a training step of 4")
    ms = {e.key: e.self_cpu_time_total / 5e3 for e in prof.key_averages()}
    print(f"of which convolution backward: {ms.get('aten::convolution_backward', 0):.1f} ms")


def summarise(prof: profile, what: str) -> None:
    """Self CPU times per call of 5: the whole, the convolutions (forward and backward), inductor's kernels."""
    events = prof.key_averages()
    ms = {e.key: e.self_cpu_time_total / 5e3 for e in events}
    kernels = [e for e in events if "cpp_fused" in e.key]
    total = sum(e.self_cpu_time_total for e in events)
    convolutions = sum(
        ms.get(k, 0) for k in ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution_backward")
    )
    print(f"{what}: {total / 5e3:.1f} ms (all self times)")
    print(f"convolutions: {convolutions:.1f} ms")
    print(f"inductor's kernels: {sum(e.self_cpu_time_total for e in kernels) / 5e3:.1f} ms in {len(kernels)} kinds")
    for e in sorted(kernels, key=lambda e: -e.self_cpu_time_total)[:3]:
        name = re.sub(r"^graph_\d+_", "", e.key)
        print(f"  {e.self_cpu_time_total / 5e3:.2f} ms in {e.count // 5} call(s): {name}")


def gates(z: torch.Tensor, c: torch.Tensor, sigmoid, tanh) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    z_i, z_f, z_o, z_g = z.chunk(4, 1)
    i, f, o, g = sigmoid(z_i + c), sigmoid(z_f + c), sigmoid(z_o + c), tanh(z_g)
    c = f * c + i * g
    return o * tanh(c), c


def gate_arithmetic_ms(sigmoid, tanh) -> float:  # noqa: ANN001
    """The cell's arithmetic at 55x55, batch 8, compiled alone with these two functions: best of 5 x 50 calls."""
    z = torch.randn(8, 64, 55, 55).contiguous(memory_format=torch.channels_last)
    c = torch.randn(8, 16, 55, 55).contiguous(memory_format=torch.channels_last)
    step = torch.compile(lambda z, c: gates(z, c, sigmoid, tanh))
    best = float("inf")
    with torch.no_grad():
        for _ in range(5):
            step(z, c)
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(50):
                step(z, c)
            best = min(best, (time.perf_counter() - started) / 50)
    return best * 1e3


def time_gate_arithmetic() -> None:
    forms = {
        "sigmoid and tanh": (torch.sigmoid, torch.tanh),
        "multiplications instead": (lambda x: x * 0.5, lambda x: x * 0.5),
        "exps, no division": (torch.exp, torch.exp),
    }
    for name, (sigmoid, tanh) in forms.items():
        print(f"gate arithmetic at 55x55, batch 8, {name}: {gate_arithmetic_ms(sigmoid, tanh):.3f} ms")


def best_ms(step, calls: int = 10) -> float:  # noqa: ANN001
    """Milliseconds per call of ``step``: best of 5 runs of ``calls``, after 5 calls of warm-up."""
    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e3


def time_frame_norms() -> None:
    phases = torch.randn(40, 16, 57, 57).contiguous(memory_format=torch.channels_last)  # deconv3's, 8 windows x 5
    volume = random_volumes(8, 5)

    def flattened(phases: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
        output = F.pixel_shuffle(phases, 4)[..., :227, :227].unflatten(0, (8, 5))
        return torch.linalg.vector_norm((output - volume[:, 5:].float() / 255).flatten(2), dim=2)

    def own_dimensions(phases: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
        output = F.pixel_shuffle(phases, 4)[..., :227, :227].unflatten(0, (8, 5))
        return frame_errors(output, volume[:, 5:].float() / 255)

    for norms in (flattened, own_dimensions):
        compiled = torch.compile(norms, options=compile_options())  # two functions: two graphs
        eager_ms = best_ms(lambda f=norms: f(phases, volume))
        compiled_ms = best_ms(lambda f=compiled: f(phases, volume))
        print(f"frame norms of a test batch, {norms.__name__}: compiled {compiled_ms:.2f} ms, eager {eager_ms:.2f} ms")


if __name__ == "__main__":
    profile_scoring()
    profile_training()
    time_gate_arithmetic()
    time_frame_norms()
