"""Run ``train.py`` / ``eval.py`` in a subprocess on tiny data, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Tiny and fast: tau=2 prediction (4-frame volumes), batch 2, one epoch, no logger unless asked.
FAST = ["tau=2", "batch_size=2", "trainer.max_epochs=1", "logger=none", "datamodule.test_batch_size=4"]


def run_entry(
    script: str, overrides: list[str], tmp: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "ANOMALY_DATA": str(tmp / "data"),
        "ANOMALY_CACHE": str(tmp / "cache"),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp / "wandb"),
        "PYTHONPATH": str(ROOT / "tests"),
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    flags = [o for o in overrides if o.startswith("-")]
    rest = [o for o in overrides if not o.startswith("-")]
    args = [sys.executable, str(ROOT / script), *flags, f"paths.log_dir={tmp / 'outputs'}", *rest]
    done = subprocess.run(args, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def results(tmp: Path) -> list[dict]:
    return [
        json.loads(p.read_text()) | {"_dir": str(p.parent)} for p in sorted((tmp / "outputs").rglob("results.json"))
    ]
