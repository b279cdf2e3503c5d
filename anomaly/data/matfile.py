"""MATLAB ``.mat`` files read in a child process, so that a corrupt file cannot take the job down with it.

``scipy.io.loadmat`` runs compiled code that can crash the interpreter on a damaged uncompressed v5 file (a
segmentation fault: 32 of 1,500 single-byte mutations of a ground-truth file did it). Here a child Python
process reads the files one after the other and sends each result back as soon as it has it; when the
child dies (or hangs) on a file, that file gets a :class:`DataError` naming it and a new child goes on with
the rest.

Example:
    >>> content = load_mat("ped2.mat")  # doctest: +SKIP
    >>> content["gt"].shape  # doctest: +SKIP
    (1, 12)
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from anomaly.errors import DataError

# A reader stuck on one file is stopped after this long (a damaged size field can make scipy read for ages).
TIMEOUT_S, TIMEOUT_S_PER_MB = 10.0, 10.0


def load_mat(path: str | os.PathLike) -> dict[str, Any]:
    """The variables of one ``.mat`` file; a :class:`DataError` naming it when it cannot be read."""
    [outcome] = iter_mats([path])
    if isinstance(outcome, DataError):
        raise outcome
    return outcome


def iter_mats(paths: Sequence[str | os.PathLike]) -> Iterator[dict[str, Any] | DataError]:
    """Each file's variables, or the :class:`DataError` that says why it cannot be read, in order.

    Lazy: a file's content is read when the caller asks for it, so a caller that keeps only a summary of
    each (Avenue's per-frame masks) never holds all of them at once.
    """
    pending = [str(Path(p)) for p in paths]
    while pending:
        for outcome in _read_in_child(pending):
            pending.pop(0)
            yield outcome


def _read_in_child(paths: list[str]) -> Iterator[dict[str, Any] | DataError]:
    """Outcomes of a prefix of ``paths``: all of them, unless the child dies or hangs on one, which ends it."""
    child = subprocess.Popen(
        [sys.executable, "-m", "anomaly.data.matfile", *paths],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    try:
        for path in paths:
            size_mb = os.path.getsize(path) / 1e6 if os.path.isfile(path) else 0.0
            watchdog = threading.Timer(TIMEOUT_S + TIMEOUT_S_PER_MB * size_mb, child.kill)
            watchdog.start()
            try:
                kind, value = pickle.load(child.stdout)  # written by this module's own child (_serve)
            except (EOFError, pickle.UnpicklingError):
                child.wait()
                yield DataError(
                    f"{path}: cannot read this MATLAB file: the reader crashed or hung on it (exit code "
                    f"{child.returncode}); the file is damaged: copy or download it again"
                )
                return
            finally:
                watchdog.cancel()
            yield value if kind == "ok" else DataError(f"{path}: cannot read this MATLAB file ({value})")
    finally:
        child.stdout.close()
        child.kill()
        child.wait()


def _serve(paths: list[str]) -> None:
    import scipy.io

    out = sys.stdout.buffer
    for path in paths:
        try:
            answer = ("ok", scipy.io.loadmat(path))
        except Exception as err:  # scipy raises many unrelated types for a bad file
            answer = ("error", f"{type(err).__name__}: {err}")
        pickle.dump(answer, out)
        out.flush()


if __name__ == "__main__":
    _serve(sys.argv[1:])
