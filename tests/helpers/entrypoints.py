"""Run ``train.py`` / ``eval.py`` in a subprocess on tiny data, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Tiny and fast: tau=2 prediction (4-frame volumes), batch 2, one epoch, no logger unless asked.
FAST = ["tau=2", "batch_size=2", "trainer.max_epochs=1", "logger=none", "datamodule.test_batch_size=4"]


def run_entry(
    script: str, overrides: list[str], tmp: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python <script> <overrides>`` in the folder ``tmp``, as a user would from a fresh folder.

    Nothing points the outputs elsewhere: they land in ``tmp/outputs`` because that is where a run started
    in ``tmp`` puts them, data is read from ``tmp/data`` and frames cached in ``tmp/.cache``. W&B decides its
    mode itself: without credentials (none are passed on) it writes offline runs.
    """
    environment = user_environment(tmp) | {"PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"} | (env or {})
    args = [sys.executable, str(ROOT / script), *overrides]
    done = subprocess.run(args, cwd=tmp, env=environment, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def user_environment(tmp: Path) -> dict[str, str]:
    """This process's environment without the project's and W&B's settings, as on a user's machine."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "WANDB_"))}
    return environment | {"NETRC": str(tmp / ".netrc-none"), "WANDB_CONFIG_DIR": str(tmp / ".wandb-config")}


def results(tmp: Path) -> list[dict]:
    return [
        json.loads(p.read_text()) | {"_dir": str(p.parent)} for p in sorted((tmp / "outputs").rglob("results.json"))
    ]
