"""The benchmark: its memory-traffic count (what inductor's kernels read and write, nothing else); machine names."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from anomaly.bench.bounds import Convolution, inductor_kernel_bytes
from anomaly.bench.cli import above_its_limit, convolutions_alone, main
from anomaly.bench.modes import Mode
from anomaly.bench.peaks import GateConvolution
from anomaly.bench.timing import runs_beside, timed_beside
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


@pytest.mark.parametrize("option", ["--steps", "--batch", "--test-batch", "--tau"])
def test_a_count_below_one_is_named_before_anything_runs(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--device", "cpu", option, "0"])
    assert f"{option}=0: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(("device", "message"), [("tpu", "expected auto, cpu, cuda"), ("cuda:7", "no such GPU here")])
def test_a_device_it_cannot_use_is_named_before_anything_runs(device: str, message: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with pytest.raises(SystemExit):
        main(["--device", device])
    error = capsys.readouterr().err
    assert "--device=" in error and device in error and message in error


def test_files_it_cannot_use_are_named_before_anything_runs(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--json", str(a_file / "bench.json")])
    error = capsys.readouterr().err
    assert f"--json {a_file / 'bench.json'}: cannot write it ({a_file} is a file, not a folder)" in error
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--ucsd", str(tmp_path / "ped2")])
    assert f"dataset 'ped2': {tmp_path / 'ped2'} does not exist" in capsys.readouterr().err


def test_a_cpu_is_named_with_its_threads_and_the_vector_units_torch_uses() -> None:
    name = device_name("cpu")
    assert f"({torch.get_num_threads()} threads; {torch.backends.cpu.get_cpu_capability()}" in name
    assert ("AMX" in name) == torch.cpu._is_amx_tile_supported()  # what decides bf16's speed here


def test_a_bound_is_the_convolutions_alone_plus_the_kernels_bytes_at_the_bandwidth() -> None:
    mode = Mode("compiled fp32", "fp32", True, kernel_bytes_train=10**9, kernel_bytes_test=5 * 10**8)
    # 0.1 s of convolutions + 1 GB at 10 GB/s per training step of 4; 0.05 s + 0.5 GB per test batch of 8
    assert mode.bound((0.1, 0.05), (4, 8), bandwidth=10.0, flops=(9e9, 3e9), peaks=(300.0, 400.0))
    assert mode.bound_train_volumes_per_s == pytest.approx(4 / 0.2)
    assert mode.bound_test_frames_per_s == pytest.approx(8 / 0.1)
    assert mode.bound_train_fraction_of_peak == pytest.approx(20 * 9 / 300)
    assert mode.bound_test_fraction_of_peak == pytest.approx(80 * 3 / 400)
    uncounted = Mode("compiled fp32", "fp32", True, kernel_bytes_train=None, kernel_bytes_test=5 * 10**8)
    assert not uncounted.bound((0.1, 0.05), (4, 8), bandwidth=10.0, flops=(9e9, 3e9), peaks=(300.0, 400.0))
    assert uncounted.bound_train_volumes_per_s is None  # no figure, not a made-up one


def test_the_convolutions_alone_are_fractions_of_the_peaks_measured_beside_them() -> None:
    # one 3x3 convolution with its backward per training step, one without per test batch
    train = Counter({Convolution((2, 8, 32, 32), (16, 8, 3, 3), True, (1, 1), (1, 1), False, (0, 0), True, True): 3})
    test = Counter({Convolution((4, 8, 32, 32), (16, 8, 3, 3), False, (1, 1), (1, 1), False, (0, 0), False, False): 2})
    readings, asked = iter([100.0, 50.0, 80.0]), []

    def peak(seconds: float) -> float:
        asked.append(seconds)
        return next(readings)

    alone, (train_s, test_s) = convolutions_alone(train, test, (2, 4), torch.device("cpu"), "fp32", 5, peak)
    assert alone.name == "fp32 convolutions alone"
    assert (alone.train_peak_gflops, alone.test_peak_gflops) == (100.0, 80.0)  # the higher reading on each side
    assert alone.train_volumes_per_s == pytest.approx(2 / train_s)
    assert alone.test_frames_per_s == pytest.approx(4 / test_s)
    assert 0 < test_s < train_s  # three convolutions with their backward against two without, at twice the batch
    assert asked[1:] == pytest.approx([5 * train_s, 5 * test_s])  # each reading as long as 5 steps of what it follows


def test_a_mode_above_its_bound_is_flagged_not_passed_off() -> None:
    mode = Mode("compiled fp32", "fp32", True, train_fraction_of_peak=0.572, test_fraction_of_peak=0.592)
    assert above_its_limit(mode, "its bound", (0.6, 0.7)) is None
    note = above_its_limit(mode, "its bound", (0.477, 0.735))  # the Ice Lake Xeon's third run of 2026-12-08
    assert note.startswith("note: above its bound in training (57.2% against 47.7%): the machine's speed moved")
    assert "testing" not in note
    both = above_its_limit(mode, "the convolutions alone", (0.5, 0.5))
    assert "in training (57.2% against 50.0%) and testing (59.2% against 50.0%)" in both


def test_a_mode_is_timed_beside_the_peak_over_as_long_as_its_runs_and_the_higher_reading_kept() -> None:
    # A probe call, then three runs of 5 calls. Sleeps overshoot on a busy machine (1 ms took 1.6 once), so the
    # runs are 10 ms apart and only their order is asserted.
    calls = iter([0.03] + [0.03] * 5 + [0.01] * 5 + [0.02] * 5)
    readings, asked = iter([1.0, 5.0, 2.0, 9.0]), []

    def reference(seconds: float) -> float:
        asked.append(seconds)
        return next(readings)

    seconds, beside = timed_beside(lambda: time.sleep(next(calls)), reference, 5, torch.device("cpu"))
    assert 0.01 <= seconds < 0.02  # the best run: the second
    assert beside == 5.0  # the readings just before (5) and after (2) the second run: the higher
    # each reading as long as the run it stands beside: 5 calls of the probe's 30 ms, then of each run
    assert asked == pytest.approx([0.15, 0.15, 0.05, 0.10], abs=0.02)


def test_each_run_beside_the_reference_shares_its_readings_with_its_neighbours() -> None:
    calls = iter([0.02] + [0.02] * 3 + [0.01] * 3)  # a probe call, then two runs of 3 calls, 10 ms apart
    readings = iter([1.0, 2.0, 3.0])
    runs = list(runs_beside(lambda: time.sleep(next(calls)), lambda _: next(readings), 3, torch.device("cpu"), 2))
    assert [(before, after) for _, before, after in runs] == [(1.0, 2.0), (2.0, 3.0)]
    assert runs[0][0] > runs[1][0]  # each run's own seconds per call, in order


def test_the_peak_beside_a_run_is_sustained_for_as_long_as_it() -> None:
    conv = GateConvolution((32, 64, 55), torch.channels_last, 1, torch.device("cpu"), torch.float32)
    started = time.perf_counter()
    assert conv.sustained_gflops(0.3) > 0
    assert 0.15 < time.perf_counter() - started < 1.0  # one run of about 0.3 s, not a few milliseconds


def test_a_mode_is_a_fraction_of_the_peak_beside_its_own_runs() -> None:
    mode = Mode("compiled fp32", "fp32", True, train_volumes_per_s=20.0, test_frames_per_s=50.0,
                train_peak_gflops=300.0, test_peak_gflops=250.0)  # fmt: skip
    mode.rate((9e9, 3e9))
    assert mode.train_gflops == pytest.approx(180) and mode.train_fraction_of_peak == pytest.approx(0.6)
    assert mode.test_gflops == pytest.approx(150) and mode.test_fraction_of_peak == pytest.approx(0.6)
