"""Calibration from normal video only, and alarms that a live detector can raise frame by frame.

The paper's regularity (Eq. 3) normalises each video by its own minimum and maximum, so it is known only
once the video has ended, and the AUC says nothing about where to put an alarm. Here the prediction errors
e(t) of windows of NORMAL video (never test labels) give an empirical distribution; then, causally:

- calibrated score: ``F(e)``, the fraction of normal windows whose error is at most e (in [0, 1]);
- alarm threshold for a target false-alarm rate ``a`` on normal video: ``Q(1 - a)``, the (1 - a) quantile;
- alarms with a minimum length and a hysteresis (:class:`AlarmState`): an event is raised once the error
  has stayed at or above the threshold for ``min_frames`` frames in a row; it ends when the error falls
  below the lower ``Q(1 - release_rate)`` (``release_rate >= rate``), so one noisy frame neither raises
  nor ends an event.

Example:
    >>> calibration = Calibration.from_errors(normal_errors, tau=5, task="prediction", source="ped2 train")
    >>> threshold = calibration.threshold(0.01)          # 1 % of normal windows exceed it  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from anomaly.errors import ConfigError, WeightsError

# Quantile levels kept: every 0.1 %, and a finer tail for small false-alarm rates.
LEVELS = np.unique(np.concatenate([np.linspace(0, 1, 1001), 1 - np.logspace(-5, -3, 9)]))
VERSION = 1


@dataclass(frozen=True)
class Calibration:
    """The distribution of normal prediction errors of one set of weights (quantiles at ``levels``)."""

    levels: list[float]
    quantiles: list[float]
    windows: int
    tau: int
    task: str
    mask: list[list[int]]
    source: str
    weights_sha256: str | None = None
    version: int = VERSION

    @classmethod
    def from_errors(cls, errors: np.ndarray, tau: int, task: str, source: str,
                    mask: list[list[int]] | None = None) -> Calibration:  # fmt: skip
        errors = np.asarray(errors, dtype=np.float64)
        if errors.size < 2 or not np.isfinite(errors).all():
            raise ConfigError(
                f"calibration from {source}: needs at least 2 finite prediction errors of normal windows, got "
                f"{errors.size}{'' if np.isfinite(errors).all() else ' (some not finite)'}"
            )
        quantiles = np.quantile(errors, LEVELS)
        return cls(LEVELS.tolist(), quantiles.tolist(), int(errors.size), tau, task, mask or [], source)

    def threshold(self, rate: float) -> float:
        """The error above which a fraction ``rate`` of normal windows lies (the alarm threshold)."""
        check_rate(rate, "alarm.false_alarm_rate")
        return float(np.interp(1 - rate, self.levels, self.quantiles))

    def score(self, errors: np.ndarray) -> np.ndarray:
        """``F(e)``: for each error, the fraction of normal windows with an error at most as large."""
        return np.interp(np.asarray(errors, dtype=np.float64), self.quantiles, self.levels, left=0.0, right=1.0)

    def check(self, tau: int, task: str, where: str) -> None:
        if (self.tau, self.task) != (tau, task):
            raise WeightsError(
                f"{where} was made for tau={self.tau} task={self.task}, but the weights are used with tau={tau} "
                f"task={task}; calibrate these weights again (python calibrate.py ...)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Calibration:
        try:
            calibration = cls(**data)
            ok = len(calibration.levels) == len(calibration.quantiles) >= 2 and calibration.version == VERSION
        except TypeError as err:
            raise WeightsError(f"{where}: not a calibration of this project ({err})") from None
        if not ok or not np.all(np.diff(calibration.quantiles) >= 0):
            raise WeightsError(f"{where}: a damaged calibration (quantiles not increasing); calibrate again")
        return calibration


def check_rate(rate: float, name: str) -> None:
    if not (isinstance(rate, (int, float)) and 0 < rate < 1):
        raise ConfigError(f"{name}={rate!r}: must be a fraction between 0 and 1 (e.g. 0.01 for 1 %)")


@dataclass(frozen=True)
class AlarmSettings:
    """``conf/alarm``: the target false-alarm rate, the release rate (hysteresis) and the minimum length."""

    false_alarm_rate: float
    release_rate: float
    min_frames: int

    def __post_init__(self) -> None:
        check_rate(self.false_alarm_rate, "alarm.false_alarm_rate")
        check_rate(self.release_rate, "alarm.release_rate")
        if self.release_rate < self.false_alarm_rate:
            raise ConfigError(
                f"alarm.release_rate={self.release_rate} must be >= alarm.false_alarm_rate={self.false_alarm_rate}"
                f" (an event ends below a LOWER threshold than the one that raised it)"
            )
        if not (isinstance(self.min_frames, int) and self.min_frames >= 1):
            raise ConfigError(f"alarm.min_frames={self.min_frames!r}: must be a whole number >= 1")


@dataclass
class Event:
    """An alarm: ``start`` is the first frame at or above the threshold, ``raised`` the frame the alarm went
    on (``start + min_frames - 1``), ``end`` the last frame of the event (None while it lasts); 0-based."""

    start: int
    raised: int
    end: int | None = None
    peak_score: float = 0.0
    peak_frame: int = 0


@dataclass
class AlarmState:
    """Turns the errors of consecutive scored frames into events, one frame at a time (causal)."""

    on: float
    off: float
    min_frames: int
    run: int = 0  # consecutive frames at or above ``on``
    event: Event | None = None
    events: list[Event] = field(default_factory=list)

    @classmethod
    def of(cls, calibration: Calibration, settings: AlarmSettings) -> AlarmState:
        return cls(calibration.threshold(settings.false_alarm_rate), calibration.threshold(settings.release_rate),
                   settings.min_frames)  # fmt: skip

    def update(self, frame: int, error: float, score: float) -> tuple[bool, Event | None, Event | None]:
        """(alarm on at this frame, the event raised here, the event ended here)."""
        raised = ended = None
        if self.event is not None and error < self.off:
            self.event.end = frame - 1
            ended, self.event = self.event, None
        self.run = self.run + 1 if error >= self.on else 0
        if self.event is None and self.run >= self.min_frames:
            self.event = Event(start=frame - self.min_frames + 1, raised=frame, peak_score=score, peak_frame=frame)
            self.events.append(self.event)
            raised = self.event
        if self.event is not None and score > self.event.peak_score:
            self.event.peak_score, self.event.peak_frame = score, frame
        return self.event is not None, raised, ended

    def close(self, last_frame: int) -> Event | None:
        """End the event still running at the end of the stream (its end is the last frame)."""
        if self.event is None:
            return None
        self.event.end, ended, self.event = last_frame, self.event, None
        return ended


def alarms_of(frames: np.ndarray, errors: np.ndarray, scores: np.ndarray, calibration: Calibration,
              settings: AlarmSettings) -> np.ndarray:  # fmt: skip
    """The 0/1 alarm of each scored frame of one video, as a live detector would have raised it."""
    state = AlarmState.of(calibration, settings)
    alarm = np.zeros(len(frames), dtype=np.int64)
    for i, (frame, error, score) in enumerate(zip(frames.tolist(), errors.tolist(), scores.tolist(), strict=True)):
        alarm[i] = state.update(frame, error, score)[0]
    if len(frames):
        state.close(int(frames[-1]))
    return alarm


def operating_point(videos: list[tuple[np.ndarray, np.ndarray, np.ndarray]], fps: float) -> dict[str, Any]:
    """Frame-level TPR / FPR of the alarms, false alarms per minute of normal video, and per ground-truth event
    whether it was detected and how many frames after its start (``videos``: (frames, alarm, labels) each)."""
    alarms = np.concatenate([a for _, a, _ in videos]) if videos else np.zeros(0)
    labels = np.concatenate([y for _, _, y in videos]) if videos else np.zeros(0)
    positives, negatives = int((labels == 1).sum()), int((labels == 0).sum())
    false_alarms, gt_events = 0, []
    for video_index, (frames, alarm, label) in enumerate(videos):
        false_alarms += sum(not label[a:b + 1].any() for a, b in _spans(alarm))  # fmt: skip
        for a, b in _spans(label):
            hits = np.flatnonzero(alarm[a : b + 1])
            gt_events.append({
                "video": video_index, "start_frame": int(frames[a]), "end_frame": int(frames[b]),
                "detected": bool(hits.size), "delay_frames": int(hits[0]) if hits.size else None,
            })  # fmt: skip
    delays = [e["delay_frames"] for e in gt_events if e["detected"]]
    minutes = negatives / fps / 60 if fps > 0 else math.nan
    return {
        "op_tpr": float(alarms[labels == 1].mean()) if positives else math.nan,
        "op_fpr": float(alarms[labels == 0].mean()) if negatives else math.nan,
        "false_alarms": false_alarms,
        "false_alarms_per_minute": false_alarms / minutes if minutes and minutes > 0 else math.nan,
        "events_detected": sum(e["detected"] for e in gt_events),
        "events_total": len(gt_events),
        "median_delay_frames": float(np.median(delays)) if delays else math.nan,
        "gt_events": gt_events,
    }


def _spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """Index spans [a, b] (inclusive) of the runs of non-zero values."""
    padded = np.concatenate([[0], (np.asarray(flags) != 0).astype(np.int8), [0]])
    changes = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(changes[::2], changes[1::2], strict=True)]
