"""The benchmark: its memory-traffic count (what inductor's kernels read and write, nothing else); machine names."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anomaly.bench import inductor_kernel_bytes, main
from anomaly.hardware import device_name


def test_the_kernel_bytes_count_what_inductor_generates_not_the_convolutions() -> None:
    x, w = torch.rand(1, 1, 64, 64), torch.rand(16, 1, 3, 3)
    with inductor_kernel_bytes() as conv_alone:
        torch.compile(lambda x, w: F.conv2d(x, w, padding=1))(x, w)
    with inductor_kernel_bytes() as conv_doubled:
        torch.compile(lambda x, w: 2 * F.conv2d(x, w, padding=1))(x, w)
    with inductor_kernel_bytes() as nothing_compiled:
        F.conv2d(x, w, padding=1)
    assert conv_alone["bytes"] == 0  # a library call, not a generated kernel
    output = 16 * 64 * 64 * 4
    assert conv_doubled["bytes"] == 2 * output  # the doubling reads the convolution's output and writes its own
    assert nothing_compiled["bytes"] is None  # nothing counted is no figure, not a 0


def test_the_kernel_bytes_include_the_backward() -> None:
    x = torch.rand(10_000, requires_grad=True)
    with inductor_kernel_bytes() as forward:
        torch.compile(lambda x: torch.sigmoid(x) * 2)(x.detach())
    assert forward["bytes"] == 2 * x.nbytes  # reads x, writes the result: each once
    with inductor_kernel_bytes() as both:
        torch.compile(lambda x: (torch.sigmoid(x) * 2).sum())(x).backward()
    assert both["bytes"] >= 3 * x.nbytes  # forward reads x; backward reads it (or what was saved), writes the grad


def test_an_unknown_mode_is_named_before_anything_is_measured(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--modes", "compiled fp32,compiled fp64"])
    error = capsys.readouterr().err
    assert "no mode 'compiled fp64' on cpu" in error and "'compiled bf16'" in error


def test_a_cpu_is_named_with_its_threads_and_the_vector_units_torch_uses() -> None:
    name = device_name("cpu")
    assert f"({torch.get_num_threads()} threads; {torch.backends.cpu.get_cpu_capability()}" in name
    assert ("AMX" in name) == torch.cpu._is_amx_tile_supported()  # what decides bf16's speed here
