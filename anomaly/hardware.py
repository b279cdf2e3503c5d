"""The name of the machine that measured a number: ``results.json``'s device (Table III) and the benchmark's.

A CPU's speed in this model depends on more than its name: oneDNN runs bf16 convolutions on AMX tiles where
the CPU has them (6.8 times the fp32 peak on the 2-core Xeon measured), and with avx512_bf16 alone at 1.9
times fp32 on a 2-core AMD EPYC but 0.55 times on another 2-core Xeon (docs/benchmarks.md), so the name
carries the vector units torch found.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from anomaly.errors import ConfigError


def resolve_device(name: str, setting: str = "device") -> torch.device:
    """``auto`` (the GPU if there is one), ``cpu``, ``cuda`` or ``cuda:N`` as a device, or a :class:`ConfigError`
    that names ``setting``: for a device torch does not know, or a GPU this machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{setting}={name!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise ConfigError(f"{setting}={name}: no such GPU here ({torch.cuda.device_count()} found); use cpu or auto")
    return device


def cpu_model() -> str:
    """The CPU's marketing name (Linux's ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str | None = None) -> str:
    """The GPU's name, or the CPU's model with torch's threads and vector units.

    ``device`` defaults to the one the jobs use: the GPU if there is one.

    Example: ``"Intel(R) Xeon(R) Processor (2 threads; AVX512, avx512_bf16, AMX)"``.
    """
    device = resolve_device("auto") if device is None else torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    units = [torch.backends.cpu.get_cpu_capability(), *_bf16_units()]
    return f"{cpu_model()} ({torch.get_num_threads()} threads; {', '.join(units)})"


def _bf16_units() -> list[str]:
    """The CPU's units that compute in bf16 natively, as torch.cpu finds them."""
    # torch.cpu's own checks, private in torch 2.13: looked up so that a torch without them names fewer units
    checks = (("avx512_bf16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
    return [unit for unit, check in checks if getattr(torch.cpu, check, lambda: False)()]


def emulated_bf16(device: torch.device) -> str | None:
    """Why bf16 on ``device`` runs slower than fp32 (an x86 CPU with neither avx512_bf16 nor AMX, where oneDNN
    emulates it), for a warning; None where bf16 is native or this is not known."""
    if device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64") or _bf16_units():
        return None
    return (
        f"this CPU ({cpu_model()}) has neither avx512_bf16 nor AMX, so oneDNN emulates bf16: expect it slower than "
        "fp32 (2.3-2.7 times in training on a 2-core Intel Xeon without them, docs/benchmarks.md); "
        "`make bench` measures both here"
    )
