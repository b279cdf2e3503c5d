"""Test-session settings and the fixtures shared by the test files."""

from pathlib import Path

import pytest
import torch
from helpers.datasets import make_ucsd_original

# The tests run tiny tensors; with several threads, thread start-up and contention dominate (a 55x55 tanh
# took 6 ms on 2 threads against 0.01 ms on one, on the 2-core development machine).
torch.set_num_threads(1)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A folder to run commands in, holding a tiny 'ped2' in the original UCSD layout under ``data/``:
    3 training videos and 2 test videos with anomalies (frames 8-14 of the first, 3-6 of the second)."""
    make_ucsd_original(
        tmp_path / "data" / "ped2",
        train_frames=(12, 12, 10),
        test_frames=(14, 12),
        size=(24, 16),
        gt=[[(8, 14)], [(3, 6)]],
    )
    return tmp_path
