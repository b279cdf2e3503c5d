"""Frame sources for live detection: anything OpenCV opens (a video file, a camera index, an RTSP or HTTP
URL) or a folder of frames, read in a background thread so that decoding overlaps scoring.

Every frame comes out twice: as it was captured (for the overlay video) and preprocessed exactly as the
datasets' frames are (grey, 227x227 with PIL's bilinear filter, ``uint8``), so that a video scored here and
through ``eval.py`` gets the same prediction errors.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from anomaly.data.frames import FRAME_FOLDER_FPS, image_files, preprocess
from anomaly.errors import DataError
from anomaly.model.convlstm import FRAME_SIZE


@dataclass
class Frame:
    index: int  # 0-based, in arrival order
    time_s: float  # position in the video (files, folders) or seconds since the start (live sources)
    image: np.ndarray | None  # as captured (H, W, 3) BGR, kept only when an overlay is written
    grey: np.ndarray  # preprocessed (227, 227) uint8


@dataclass(frozen=True)
class SourceInfo:
    name: str
    live: bool  # a camera or a network stream: no end known in advance, wall-clock times
    fps: float
    frames: int | None  # known for files and folders


def describe(source: str, fps: float | None) -> tuple[SourceInfo, cv2.VideoCapture | list[Path]]:
    """What ``source`` is, and an open handle on it; a :class:`DataError` naming it if it cannot be opened."""
    path = Path(source)
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise DataError(f"source={source}: a folder without image files (.jpg, .png, .tif, .bmp)")
        return SourceInfo(source, False, fps or FRAME_FOLDER_FPS, len(files)), files
    live = source.isdigit() or "://" in source
    if not live and not path.exists():
        raise DataError(f"source={source}: no such file or folder (give a video file, a folder of frames, a camera "
                        f"index such as 0, or a stream URL such as rtsp://... or http://...)")  # fmt: skip
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        capture.release()
        raise DataError(f"source={source}: OpenCV cannot open it; is it a readable video, a connected camera or a "
                        f"reachable stream?")  # fmt: skip
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or FRAME_FOLDER_FPS
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    count = count if count > 0 and not live else None  # a raw stream's container may report nonsense
    return SourceInfo(source, live, float(rate), count), capture


class FrameReader:
    """Reads and preprocesses the frames of a source in a thread; iterate to get them in order.

    ``close()`` (or the end of the source) stops it; a read error is raised in the consumer.
    """

    def __init__(self, source: str, fps: float | None, keep_images: bool, buffer: int = 512) -> None:
        self.info, self._handle = describe(source, fps)
        self._keep = keep_images
        self._queue: queue.Queue = queue.Queue(maxsize=buffer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    def _frames(self) -> Iterator[np.ndarray]:
        if isinstance(self._handle, list):
            for path in self._handle:
                try:
                    with Image.open(path) as image:
                        yield cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
                except OSError as err:
                    raise DataError(f"{path}: cannot read this image ({err}); replace or remove the file") from err
            return
        while not self._stop.is_set():
            ok, frame = self._handle.read()
            if not ok:
                return
            yield frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for index, image in enumerate(self._frames()):
                if self._stop.is_set():
                    break
                grey = preprocess(Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), FRAME_SIZE)
                when = time.perf_counter() - started if self.info.live else index / self.info.fps
                self._put(Frame(index, when, image if self._keep else None, grey))
        except Exception as err:  # handed to the consumer, which raises it
            self._put(err)
        finally:
            self._put(None)
            if not isinstance(self._handle, list):
                self._handle.release()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        item = self._queue.get()
        if item is None:
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    def pending(self, limit: int) -> list[Frame]:
        """Up to ``limit`` frames already read and waiting, without blocking (for batching)."""
        frames: list[Frame] = []
        while len(frames) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return frames
            if item is None or isinstance(item, Exception):
                self._queue.put(item)  # the end or an error: the next __next__ sees it
                return frames
            frames.append(item)
        return frames

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
