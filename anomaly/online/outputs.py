"""What a detection run leaves in its folder, written so that a killed run leaves complete files.

- ``scores.csv``: one row per frame (``frame,time_s,error,score,alarm``; the fields of a frame whose window is
  not complete yet are empty), each row appended with a single ``write`` call, so a kill never tears one;
- ``events.json``: the alarms merged into events, rewritten atomically whenever an event starts or ends;
- ``overlay.mp4`` (optional): every frame with its error map blended in colour, the score trace and the alarm
  state; ``regularity.png`` of the whole run with the events shaded, at the end.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np

from anomaly.atomic import write_atomic
from anomaly.online.detector import Scored
from anomaly.online.sources import SourceInfo
from anomaly.protocol.calibration import Event
from anomaly.reporting.plots import write_figure

COLUMNS = "frame,time_s,error,score,alarm\n"


class ScoresFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        os.write(self._fd, COLUMNS.encode())

    def write(self, result: Scored) -> None:
        frame = result.frame
        if result.error is None:
            line = f"{frame.index},{frame.time_s:.3f},,,\n"
        else:
            line = f"{frame.index},{frame.time_s:.3f},{result.error:.6f},{result.score:.6f},{int(result.alarm)}\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)


class EventsFile:
    """The events so far, with what they were measured against; ``complete`` once the run has ended."""

    def __init__(self, path: Path, source: SourceInfo, header: dict[str, Any]) -> None:
        self.path = path
        self.header = {"source": source.name, "live": source.live, "fps": source.fps} | header
        self.events: list[Event] = []
        self.times: dict[int, float] = {}  # frame -> time_s, for the frames events refer to

    def write(self, frames: int, complete: bool) -> None:
        events = [self._entry(e) for e in self.events]
        document = self.header | {"frames": frames, "complete": complete, "events": events}
        write_atomic(self.path, json.dumps(document, indent=1))

    def _entry(self, event: Event) -> dict[str, Any]:
        def time_of(frame: int | None) -> float | None:
            return None if frame is None else round(self.times.get(frame, float("nan")), 3)

        return {
            "start_frame": event.start, "raised_frame": event.raised, "end_frame": event.end,
            "start_time_s": time_of(event.start), "end_time_s": time_of(event.end),
            "peak_score": round(event.peak_score, 6), "peak_frame": event.peak_frame,
        }  # fmt: skip


class Overlay:
    """``overlay.mp4``: the frame, its error map in colour, the score trace along the bottom, the alarm."""

    TRACE = 200  # frames of score history drawn

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.writer: cv2.VideoWriter | None = None
        self.trace: deque[float] = deque(maxlen=self.TRACE)

    def write(self, result: Scored) -> None:
        image = result.frame.image.copy()
        height, width = image.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        if result.error_map is not None:  # coloured where the error is high, the frame itself elsewhere
            error = np.sqrt(result.error_map)  # absolute error: squares hide all but the largest
            heat = cv2.resize(np.clip(error / max(float(error.max()), 0.1), 0, 1), (width, height))
            colour = cv2.applyColorMap((255 * heat).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
            alpha = (0.8 * heat)[..., None]
            image = (image.astype(np.float32) * (1 - alpha) + colour * alpha).astype(np.uint8)
        self.trace.append(np.nan if result.score is None else result.score)
        band = max(height // 5, 20)
        points = [(int(i * width / self.TRACE), int(height - 2 - s * (band - 4))) for i, s in enumerate(self.trace)
                  if not np.isnan(s)]  # fmt: skip
        cv2.rectangle(image, (0, height - band), (width - 1, height - 1), (0, 0, 0), -1)
        if len(points) > 1:
            cv2.polylines(image, [np.array(points, np.int32)], False, (0, 255, 255), 1)
        label = "no score yet" if result.score is None else f"score {result.score:.3f}"
        cv2.putText(image, label, (4, height - band - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        if result.alarm:
            cv2.rectangle(image, (0, 0), (width - 1, height - 1), (0, 0, 255), max(2, width // 100))
            cv2.putText(image, "ALARM", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def regularity_plot(path: Path, scores_csv: Path, events: list[Event], threshold_score: float) -> None:
    """``regularity.png``: 1 - score over the run, the threshold, the events shaded."""
    rows = np.genfromtxt(scores_csv, delimiter=",", skip_header=1, usecols=(1, 3), ndmin=2)
    fig, ax = plt.subplots(figsize=(10, 3))
    for event in events:
        end = event.end if event.end is not None else event.start
        ax.axvspan(rows[event.start, 0], rows[end, 0], color="tab:red", alpha=0.25, lw=0)
    ax.plot(rows[:, 0], 1 - rows[:, 1], color="tab:blue", lw=1, label="regularity 1 - F(e)")
    ax.axhline(1 - threshold_score, color="tab:red", ls="--", lw=0.8, label="alarm threshold")
    ax.set(xlabel="time (s)", ylabel="regularity", ylim=(-0.02, 1.02), title="Regularity (shaded: alarm events)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    write_figure(fig, path)
