"""Score a stream of frames as they come: each frame gets its score as soon as its window is complete.

A window of ``2*tau`` (prediction) or ``tau`` (reconstruction) frames ends at a frame, and its prediction error
(Eq. 2) belongs to that frame, exactly as in the test protocol; the first ``window - 1`` frames have none.
The error is calibrated against normal video (its rank among normal windows' errors) and run through the
alarm state machine (threshold, hysteresis, minimum length). Windows that are ready together are scored as
one batch (a file is read faster than it is scored; a live stream gives one or two at a time).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from anomaly.lightning.module import AnomalyModule
from anomaly.online.sources import Frame, FrameReader
from anomaly.protocol.calibration import AlarmSettings, AlarmState, Calibration, Event
from anomaly.protocol.task import window_length


@dataclass
class Scored:
    """One frame's outcome; ``error`` is None for the first frames, which complete no window yet."""

    frame: Frame
    error: float | None = None
    score: float | None = None
    alarm: bool = False
    raised: Event | None = None
    ended: Event | None = None
    error_map: np.ndarray | None = None  # (227, 227) squared error of the last predicted frame, for overlays


class Detector:
    def __init__(self, module: AnomalyModule, calibration: Calibration, alarm: AlarmSettings, batch_size: int,
                 precision: str, keep_maps: bool) -> None:  # fmt: skip
        self.module = module.eval()
        self.calibration = calibration
        self.state = AlarmState.of(calibration, alarm)
        self.length = window_length(module.hparams.tau, module.hparams.task)
        self.batch_size, self.precision, self.keep_maps = batch_size, precision, keep_maps
        self.recent: deque[np.ndarray] = deque(maxlen=self.length)
        self.last_frame = -1

    def score(self, frames: list[Frame]) -> list[Scored]:
        """Score consecutive ``frames`` (a batch of what has arrived), in order."""
        results, windows = [], []
        for frame in frames:
            self.recent.append(frame.grey)
            results.append(Scored(frame))
            if len(self.recent) == self.length:
                windows.append((len(results) - 1, np.stack(self.recent)))
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start : start + self.batch_size]
            stacked = np.stack([w for _, w in chunk])
            volume = torch.from_numpy(stacked)[:, :, None].to(self.module.device)
            with torch.inference_mode(), self._autocast():
                out = self.module.window_errors(volume, self.batch_size)  # compiled: one batch shape
            squared = (out["last_output"][:, 0] - out["last_target"][:, 0]).square()
            maps = squared.cpu().numpy() if self.keep_maps else None
            for k, (i, _) in enumerate(chunk):
                results[i].error = float(out["errors"][k])
                results[i].error_map = None if maps is None else maps[k]
        for result in results:
            if result.error is not None:
                result.score = float(self.calibration.score(np.array([result.error]))[0])
                result.alarm, result.raised, result.ended = self.state.update(result.frame.index, result.error,
                                                                              result.score)  # fmt: skip
            self.last_frame = result.frame.index
        return results

    def finish(self) -> Event | None:
        """The end of the stream: an event still running ends at the last frame."""
        return self.state.close(self.last_frame)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.module.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def batches(reader: FrameReader, limit: int) -> Iterator[list[Frame]]:
    """Groups of at most ``limit`` consecutive frames: the next one (waiting for it) and those already read."""
    for first in reader:
        yield [first, *reader.pending(limit - 1)]
