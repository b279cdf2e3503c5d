"""Detect anomalies in a video or a live stream: ``python detect.py source=PATH_OR_URL weights=W``.

The source is anything OpenCV opens (a video file, a camera index such as 0, an RTSP or HTTP URL) or a
folder of frames; the weights a ``train.py`` checkpoint or an authors' ``.caffemodel``, calibrated on normal
video (``calibrate.py``; train.py calibrates its checkpoints itself). Every frame is scored as soon as its
window is complete; alarms follow the calibrated threshold of ``conf/alarm``. Writes ``scores.csv``,
``events.json``, ``overlay.mp4`` (files) and ``regularity.png`` into the run folder; Ctrl-C stops cleanly.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from anomaly.jobs.detection import detect
from anomaly.jobs.run import run_job


@hydra.main(version_base="1.3", config_path="conf", config_name="detect")
def main(cfg: DictConfig) -> None:
    run_job(cfg, detect)


if __name__ == "__main__":
    main()
