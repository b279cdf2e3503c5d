"""One run of ``detect.py``: score a video or a live stream frame by frame and raise calibrated alarms."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from anomaly.data.frames import FRAME_FOLDER_FPS
from anomaly.errors import ConfigError
from anomaly.hardware import emulated_bf16, resolve_device
from anomaly.model.weights import find_calibration, load_weights
from anomaly.online.detector import Detector, batches
from anomaly.online.outputs import EventsFile, Overlay, ScoresFile, regularity_plot
from anomaly.online.sources import FrameReader
from anomaly.protocol.calibration import AlarmSettings

log = logging.getLogger("anomaly")
PRECISIONS = ("fp32", "bf16")


def _stop_on_sigterm(*_: Any) -> None:
    raise KeyboardInterrupt


def detect(cfg: DictConfig) -> dict[str, Any]:
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision={cfg.precision!r}: expected one of {PRECISIONS}")
    if not (isinstance(cfg.batch_size, int) and cfg.batch_size >= 1):
        raise ConfigError(f"batch_size={cfg.batch_size!r}: must be a whole number >= 1")
    if cfg.fps is not None and not (isinstance(cfg.fps, int | float) and not isinstance(cfg.fps, bool) and cfg.fps > 0):
        raise ConfigError(f"fps={cfg.fps!r}: the source's frame rate, a number > 0 (null: the file's own rate, or "
                          f"{FRAME_FOLDER_FPS:g} for a folder of frames)")  # fmt: skip
    if not (cfg.overlay == "auto" or isinstance(cfg.overlay, bool)):
        raise ConfigError(f"overlay={cfg.overlay!r}: expected auto (for files, not for live sources), true or false")
    alarm = AlarmSettings(**cfg.alarm)
    module = instantiate(cfg.model)
    load_weights(module.net, cfg.weights, cfg.tau, cfg.task.name)
    calibration, where = find_calibration(cfg.weights, cfg.calibration)
    calibration.check(cfg.tau, cfg.task.name, str(where))
    device = resolve_device(cfg.device)
    if cfg.precision == "bf16" and (why := emulated_bf16(device)):
        log.warning("precision=bf16: %s", why)
    module.to(device)
    folder = Path(HydraConfig.get().runtime.output_dir)
    overlay_on = cfg.overlay if isinstance(cfg.overlay, bool) else None
    reader = FrameReader(str(cfg.source), cfg.fps, keep_images=overlay_on is not False)
    info = reader.info
    overlay_on = (not info.live) if overlay_on is None else overlay_on
    thresholds = {"threshold": calibration.threshold(alarm.false_alarm_rate),
                  "release_threshold": calibration.threshold(alarm.release_rate)}  # fmt: skip
    header = {"weights": str(cfg.weights), "calibration": str(where), "calibration_source": calibration.source,
              "alarm": dict(cfg.alarm), **thresholds}  # fmt: skip
    scores, events = ScoresFile(folder / "scores.csv"), EventsFile(folder / "events.json", info, header)
    overlay = Overlay(folder / "overlay.mp4", info.fps) if overlay_on else None
    detector = Detector(module, calibration, alarm, cfg.batch_size, cfg.precision, keep_maps=overlay is not None)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    log.info("scoring %s (%s, %.3g frames/s) -> %s", info.name, "live" if info.live else "file", info.fps, folder)
    count, scored, stopped, started = 0, 0, "end of the source", time.perf_counter()
    bar = tqdm(total=info.frames, unit="frame", desc="detect")
    try:
        events.write(0, complete=False)
        for group in batches(reader, cfg.batch_size):
            changed = False
            for result in detector.score(group):
                events.times[result.frame.index] = result.frame.time_s
                scores.write(result)
                scored += result.error is not None
                if overlay is not None:
                    overlay.write(result)
                if result.ended is not None:
                    changed = True
                    _announce("ended", result.ended.end, result.frame.time_s)
                if result.raised is not None:
                    events.events.append(result.raised)
                    changed = True
                    _announce("started", result.raised.start, events.times[result.raised.start])
            count += len(group)
            bar.update(len(group))
            bar.set_postfix(fps=f"{count / (time.perf_counter() - started):.1f}", events=len(events.events))
            if changed:
                events.write(count, complete=False)
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
        reader.close()
        signal.signal(signal.SIGTERM, previous)
        last = detector.finish()
        if last is not None:
            _announce("ended", last.end, events.times.get(last.end, float("nan")))
        scores.close()
        events.write(count, complete=True)
        if overlay is not None:
            overlay.close()
    seconds = time.perf_counter() - started
    if scored:
        regularity_plot(folder / "regularity.png", scores.path, events.events, 1 - alarm.false_alarm_rate)
    else:
        log.warning("no frame was scored: %s frame(s) read, and the first score needs a whole window of %d frames "
                    "(tau=%d, %s)", count, detector.length, cfg.tau, cfg.task.name)  # fmt: skip
    print(f"{count} frames in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} frames/s), {scored} scored, "
          f"{len(events.events)} event(s), stopped at the {stopped}; {folder}")  # fmt: skip
    return {
        "source": info.name,
        "frames": count,
        "scored_frames": scored,
        "events": len(events.events),
        "frames_per_s": count / max(seconds, 1e-9),
        "stopped": stopped,
        "files": {name: str(folder / name) for name in ("scores.csv", "events.json", "overlay.mp4", "regularity.png")
                  if (folder / name).exists()},
    }  # fmt: skip


def _announce(what: str, frame: int | None, time_s: float) -> None:
    tqdm.write(f"event {what} at frame {frame} ({time_s:.2f} s)")
