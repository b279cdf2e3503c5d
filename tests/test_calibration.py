"""Calibration from normal video and the alarm state machine (pure arithmetic, hand-made inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.errors import ConfigError, WeightsError
from anomaly.protocol.calibration import AlarmSettings, AlarmState, Calibration, alarms_of, operating_point


def calibration(errors: np.ndarray) -> Calibration:
    return Calibration.from_errors(errors, tau=5, task="prediction", source="normal clips")


def test_threshold_is_exceeded_by_the_target_fraction_of_normal_windows() -> None:
    errors = np.random.default_rng(0).normal(30, 2, size=20_000)
    cal = calibration(errors)
    for rate in (0.1, 0.01, 0.001):
        assert (errors > cal.threshold(rate)).mean() == pytest.approx(rate, rel=0.1)


def test_score_is_the_fraction_of_normal_windows_with_a_smaller_error() -> None:
    cal = calibration(np.arange(1.0, 101.0))  # 1, 2, ..., 100
    assert cal.score(np.array([0.0, 50.5, 1000.0])).tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert np.all(np.diff(cal.score(np.linspace(0, 120, 50))) >= 0)  # monotone: a causal ranking of errors


def test_round_trip_and_checks() -> None:
    cal = calibration(np.arange(10.0))
    assert Calibration.from_dict(cal.to_dict(), "x") == cal
    with pytest.raises(WeightsError, match="was made for tau=5 task=prediction, but the weights are used with tau=2"):
        cal.check(2, "prediction", "calibration.json")
    broken = cal.to_dict() | {"quantiles": cal.quantiles[::-1]}
    with pytest.raises(WeightsError, match="quantiles not increasing"):
        Calibration.from_dict(broken, "calibration.json")
    with pytest.raises(ConfigError, match="needs at least 2 finite prediction errors"):
        calibration(np.array([1.0, np.nan]))


def settings(min_frames: int = 3) -> AlarmSettings:
    return AlarmSettings(false_alarm_rate=0.1, release_rate=0.3, min_frames=min_frames)


def test_an_event_is_raised_after_min_frames_above_the_threshold_and_ends_below_the_release() -> None:
    state = AlarmState(on=10.0, off=8.0, min_frames=3)
    errors = [5, 11, 12, 13, 9, 9, 7, 11, 5]  # above 10 at 1-3; stays above 8 until frame 6
    outcome = [state.update(frame, e, e / 20) for frame, e in enumerate(errors)]
    assert [int(on) for on, _, _ in outcome] == [0, 0, 0, 1, 1, 1, 0, 0, 0]
    [event] = state.events
    assert (event.start, event.raised, event.end, event.peak_frame) == (1, 3, 5, 3)
    assert outcome[3][1] is event and outcome[6][2] is event


def test_one_noisy_frame_is_not_an_event() -> None:
    state = AlarmState(on=10.0, off=8.0, min_frames=2)
    for frame, e in enumerate([5, 50, 5, 5, 50, 5]):
        state.update(frame, e, 1.0)
    assert state.events == []


def test_an_event_running_at_the_end_ends_at_the_last_frame() -> None:
    cal = calibration(np.arange(100.0))
    alarm = alarms_of(np.arange(10, 16), np.array([1, 99, 99, 99, 99, 99.0]), np.zeros(6), cal, settings(2))
    assert alarm.tolist() == [0, 0, 1, 1, 1, 1]


def test_operating_point_counts_frames_false_alarms_and_caught_events() -> None:
    frames = np.arange(10)
    alarm = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0, 0])  # a false alarm (0-1), an alarm inside the event (5-6)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])  # one event, frames 4-7
    point = operating_point([(frames, alarm, labels)], fps=1.0)
    assert point["op_tpr"] == pytest.approx(2 / 4) and point["op_fpr"] == pytest.approx(2 / 6)
    assert point["false_alarms"] == 1 and point["false_alarms_per_minute"] == pytest.approx(1 / (6 / 60))
    assert point["gt_events"] == [{"video": 0, "start_frame": 4, "end_frame": 7, "detected": True, "delay_frames": 1}]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"false_alarm_rate": 0.0}, "alarm.false_alarm_rate=0.0"),
        ({"release_rate": 0.05, "false_alarm_rate": 0.1}, "alarm.release_rate=0.05 must be >="),
        ({"min_frames": 0}, "alarm.min_frames=0"),
    ],
)
def test_bad_alarm_settings_are_named(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlarmSettings(**{"false_alarm_rate": 0.01, "release_rate": 0.05, "min_frames": 3} | values)
