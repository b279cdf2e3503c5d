"""The embedded default dataset ``synthetic``: a small UCSD-style scene generated from a seed.

One static camera looks down at dark textured ground (smooth noise) crossed by small bright "pedestrians"
(ellipses of about 6x10 px in 120x80 frames) that all walk the usual way: rightward, at 0.8-1.5 px/frame,
with a little vertical sway. A walker leaving on the right comes back on the left in a new lane, so the
crowd keeps its size. Training videos show only that. Each test video adds one or two anomalous events
(``PLAN``) to the same kind of crowd:

- ``fast``: "cyclists" (12x8 px) crossing one after another at 8-10 px/frame, far faster than any walker,
  even at the training augmentation's temporal stride 3 (at most 4.5 px per sampled frame);
- ``against``: a group of walkers of the crowd that turn round and walk back to the left edge, against
  the flow, at a walker's speed, and leave;
- ``vehicle``: a large bright box (25x15 px), an object of a kind never seen in training.

A frame is abnormal (ground truth) exactly when an anomalous object is visible in it (one pixel at least
half covered) while behaving anomalously. The first event starts at frame 19-30 (1-based) and events cover
40-65 % of the scored frames, so every test video has normal and abnormal scored frames (the first
``2*tau-1`` are never scored). The UCSD layout, read by ``anomaly.data.datasets.ucsd.load_ucsd(root, "synthetic")``::

    <root>/
      Train/Train001/001.tif ...        grey 120x80 frames, 1-based names (8 videos x 80 frames)
      Test/Test001/001.tif ...          (6 videos x 80 frames)
      Test/UCSDsynthetic.m              TestVideoFile{end+1}.gt_frame = [25:69];  (1-based, inclusive;
                                        several ranges as [26:54, 73:80])
      synthetic.json                    the generator's settings; written last, marks the dataset complete

It is built in a hidden sibling folder ``.<root name>.partial-<random>`` renamed into place at the end, so a
killed generation never leaves a folder that passes for a complete dataset (its leftover may be deleted).

Example::

    dataset = load_synthetic("data/synthetic")        # generates on first use, then reads
    root = generate_synthetic("data/synthetic", seed=0)  # the generation alone
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.video import VideoDataset
from anomaly.errors import ConfigError, DataError

WIDTH, HEIGHT = 120, 80
MARKER = "synthetic.json"
VERSION = 1  # bump when the generated content changes
BACKGROUND = 60.0  # mean grey of the ground (dark: the network learns it in few steps)
WALKER_SHADE = (170.0, 220.0)
VEHICLE_SHADE = 250.0
WALKER_SPEED = (0.8, 1.5)  # px/frame, rightward: the usual direction
CYCLIST_SPEED = (8.0, 10.0)
VEHICLE_SPEED = (3.5, 4.0)
TURNING_SPEED = (1.3, 1.5)  # the walkers that turn round, so that they leave the scene soon
# Anomalous events of each test video, cycled: (kind, how many objects).
PLAN: tuple[tuple[tuple[str, int], ...], ...] = (
    (("fast", 3),),
    (("against", 3),),
    (("vehicle", 1),),
    (("fast", 2), ("fast", 1)),
    (("against", 3),),
    (("vehicle", 1),),
)
FIRST_EVENT = (18, 30)  # 0-based frame where the first event of a test video starts: [18, 30)
EVENT_GAP = (12, 18)  # normal frames between two events of one video


@dataclass
class Track:
    """One object: its centre per frame (NaN: not in the scene), half sizes, grey shade and shape.

    ``anomalous`` marks the frames where the object behaves anomalously (all False for a normal walker).
    """

    xs: np.ndarray
    ys: np.ndarray
    rx: float
    ry: float
    shade: float
    box: bool = False
    anomalous: np.ndarray | None = None


def _background(rng: np.random.Generator) -> np.ndarray:
    """A static texture: smooth noise at two scales around grey ``BACKGROUND``."""
    texture = np.zeros((HEIGHT, WIDTH), dtype=np.float64)
    for cells, amplitude in ((6, 22.0), (20, 8.0)):
        coarse = rng.standard_normal((cells * HEIGHT // WIDTH + 2, cells + 2)).astype(np.float32)
        smooth = Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        texture += amplitude * np.asarray(smooth, dtype=np.float64)
    return BACKGROUND + texture


def _draw(canvas: np.ndarray, track: Track, t: int) -> float:
    """Paint ``track`` at frame ``t`` (anti-aliased, sub-pixel position); returns its largest coverage."""
    x, y = track.xs[t], track.ys[t]
    if np.isnan(x):
        return 0.0
    x0, x1 = max(int(x - track.rx) - 1, 0), min(int(x + track.rx) + 2, WIDTH)
    y0, y1 = max(int(y - track.ry) - 1, 0), min(int(y + track.ry) + 2, HEIGHT)
    if x0 >= x1 or y0 >= y1:
        return 0.0
    gx, gy = np.meshgrid(np.arange(x0, x1) + 0.5 - x, np.arange(y0, y1) + 0.5 - y)
    if track.box:
        alpha = np.clip(track.rx + 0.5 - np.abs(gx), 0, 1) * np.clip(track.ry + 0.5 - np.abs(gy), 0, 1)
    else:
        radius = np.sqrt((gx / track.rx) ** 2 + (gy / track.ry) ** 2)
        alpha = np.clip((1 - radius) * min(track.rx, track.ry) + 0.5, 0, 1)
    patch = canvas[y0:y1, x0:x1]
    patch += alpha * (track.shade - patch)
    return float(alpha.max())


def _walker(rng: np.random.Generator, frames: int) -> Track:
    """A normal pedestrian walking rightward; it re-enters on the left in a new lane after leaving."""
    rx, ry = rng.uniform(2.5, 3.5), rng.uniform(4.5, 5.5)
    period = WIDTH + 2 * rx
    travelled = rng.uniform(0, period) + rng.uniform(*WALKER_SPEED) * np.arange(frames)
    lanes = rng.uniform(ry + 2, HEIGHT - ry - 2, size=int(travelled[-1] // period) + 1)
    sway = np.cumsum(rng.normal(0, 0.15, frames))
    ys = np.clip(lanes[(travelled // period).astype(int)] + sway, ry + 1, HEIGHT - ry - 1)
    return Track(travelled % period - rx, ys, rx, ry, rng.uniform(*WALKER_SHADE))


def _event(rng: np.random.Generator, kind: str, count: int, start: int, frames: int) -> tuple[list[Track], int]:
    """The anomalous objects of one event beginning at frame ``start``, and the frame after it ends."""
    t = np.arange(frames, dtype=np.float64)
    tracks = []
    if kind == "fast":  # ``count`` cyclists, each entering on the left as the previous one leaves
        rx, ry, speed = 6.0, 4.0, rng.uniform(*CYCLIST_SPEED)
        period = (WIDTH + 2 * rx) / speed
        for k in range(count):
            begin = start + k * WIDTH / speed  # the next one enters while this one is still visible
            xs = np.where((t >= begin) & (t < begin + period), -rx + speed * (t - begin), np.nan)
            ys = np.full(frames, rng.uniform(ry + 2, HEIGHT - ry - 2))
            tracks.append(Track(xs, ys, rx, ry, rng.uniform(*WALKER_SHADE), anomalous=~np.isnan(xs)))
        end = start + (count - 1) * WIDTH / speed + period
    elif kind == "against":  # crowd walkers that turn round at ``start`` and walk back out on the left
        end, band = start, (HEIGHT - 14) / count  # a band of lanes each, so that they do not overlap
        for k in range(count):
            rx, ry, speed = rng.uniform(2.5, 3.5), rng.uniform(4.5, 5.5), rng.uniform(*TURNING_SPEED)
            turn_x = speed * start + rng.uniform(5, 20)  # so that it is in the scene from the first frame
            gone = start + (turn_x + rx) / speed
            xs = np.where(t < gone, turn_x - speed * np.abs(t - start), np.nan)
            lane = 7 + band * (k + rng.uniform(0.2, 0.8))
            ys = np.clip(lane + np.cumsum(rng.normal(0, 0.15, frames)), ry + 1, HEIGHT - ry - 1)
            shade = rng.uniform(*WALKER_SHADE)
            tracks.append(Track(xs, ys, rx, ry, shade, anomalous=(t > start) & (t < gone)))
            end = max(end, gone)
    elif kind == "vehicle":
        rx, ry, speed = 12.0, 7.0, rng.uniform(*VEHICLE_SPEED)
        xs = np.where(t >= start, -rx + speed * (t - start), np.nan)
        xs[xs > WIDTH + rx] = np.nan
        ys = np.full(frames, rng.uniform(ry + 2, HEIGHT - ry - 2))
        tracks.append(Track(xs, ys, rx, ry, VEHICLE_SHADE, box=True, anomalous=~np.isnan(xs)))
        end = start + (WIDTH + 2 * rx) / speed
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}; expected fast, against or vehicle")
    return tracks, int(np.ceil(end))


def _render(
    rng: np.random.Generator,
    background: np.ndarray,
    tracks: list[Track],
    frames: int,
    folder: Path,
    bar: tqdm,
) -> np.ndarray:
    """Write the frames of one video as ``001.tif ...``; returns the 0/1 label of each frame."""
    folder.mkdir(parents=True)
    labels = np.zeros(frames, dtype=np.int64)
    for t in range(frames):
        canvas = background.copy()
        for track in tracks:
            coverage = _draw(canvas, track, t)
            if track.anomalous is not None and track.anomalous[t] and coverage >= 0.5:
                labels[t] = 1
        canvas += rng.normal(0, 2.0, canvas.shape)  # sensor noise
        Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8)).save(folder / f"{t + 1:03d}.tif")
        bar.update()
    return labels


def _ranges(labels: np.ndarray) -> str:
    """``a:b, c:d`` (1-based, inclusive) of the runs of 1 in ``labels``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels, [0]])))
    return ", ".join(f"{a + 1}:{b}" for a, b in zip(edges[::2], edges[1::2], strict=True))


def _settings(seed: int, train_videos: int, test_videos: int, frames: int, walkers: int) -> dict:
    return {
        "generator": __name__,
        "version": VERSION,
        "seed": seed,
        "train_videos": train_videos,
        "test_videos": test_videos,
        "frames": frames,
        "walkers": walkers,
    }


def _complete(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _build(folder: Path, settings: dict, desc: str, progress: bool) -> None:
    seed, frames, walkers = settings["seed"], settings["frames"], settings["walkers"]
    background = _background(np.random.default_rng([seed, 0]))
    lines = []
    total = (settings["train_videos"] + settings["test_videos"]) * frames
    with tqdm(total=total, desc=desc, unit="frame", disable=not progress) as bar:
        for v in range(settings["train_videos"]):
            rng = np.random.default_rng([seed, 1, v])
            crowd = [_walker(rng, frames) for _ in range(walkers)]
            _render(rng, background, crowd, frames, folder / "Train" / f"Train{v + 1:03d}", bar)
        for v in range(settings["test_videos"]):
            rng = np.random.default_rng([seed, 2, v])
            plan = PLAN[v % len(PLAN)]
            turning = sum(count for kind, count in plan if kind == "against")  # they belong to the crowd
            tracks = [_walker(rng, frames) for _ in range(max(walkers - turning, 0))]
            start = int(rng.integers(*FIRST_EVENT))
            for kind, count in plan:
                event, end = _event(rng, kind, count, start, frames)
                tracks += event
                start = end + int(rng.integers(*EVENT_GAP))
            labels = _render(rng, background, tracks, frames, folder / "Test" / f"Test{v + 1:03d}", bar)
            lines.append(f"TestVideoFile{{end+1}}.gt_frame = [{_ranges(labels)}];\n")
    (folder / "Test" / "UCSDsynthetic.m").write_text("TestVideoFile = {};\n" + "".join(lines))
    (folder / MARKER).write_text(json.dumps(settings, indent=2) + "\n")


def generate_synthetic(
    root: str | Path,
    seed: int = 0,
    train_videos: int = 8,
    test_videos: int = 6,
    frames: int = 80,
    walkers: int = 4,
    progress: bool = True,
) -> Path:
    """Write the synthetic dataset at ``root`` unless a complete one with these settings is there.

    Args:
        root: the dataset folder (created; its parent too).
        seed: everything drawn (texture, walkers, events) follows from it.
        train_videos, test_videos: videos per split.
        frames: frames per video (at least 70; an event that runs past the end is cut there).
        walkers: pedestrians in the crowd (those that turn round in ``against`` events included).
        progress: show a tqdm bar.

    Returns:
        ``root``, ready for ``load_ucsd(root, "synthetic")``.

    Raises:
        DataError: ``root`` holds something else, or a synthetic dataset made with other settings.
    """
    if frames < 70 or train_videos < 1 or test_videos < 1 or walkers < 0:
        raise ConfigError(
            f"need frames >= 70, videos >= 1 and walkers >= 0; got {frames}, "
            f"{train_videos}/{test_videos} videos and {walkers} walkers"
        )
    root = Path(root)
    settings = _settings(seed, train_videos, test_videos, frames, walkers)
    existing = _complete(root)
    if existing == settings:
        return root
    if existing is not None or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        what = f"a synthetic dataset made with {existing}" if existing else "something that is not one"
        raise DataError(f"{root} holds {what}; asked for {settings}. Delete it or choose another root.")
    partial = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        partial.mkdir()
        _build(partial, settings, f"synthetic dataset -> {root}", progress)
        partial.replace(root)  # atomic; replaces an empty folder, fails on a non-empty one
    except OSError as err:
        if _complete(root) != settings:  # not just another process finishing first
            raise DataError(
                f"cannot write the synthetic dataset into {root} ({err.strerror or err}); make that folder "
                f"writable, or set the data folder elsewhere with ANOMALY_DATA=DIR (or dataset.root=DIR)"
            ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def load_synthetic(root: str | Path, seed: int = 0, progress: bool = True) -> VideoDataset:
    """The synthetic dataset at ``root`` (default settings), generated there first if it is not yet."""
    return load_ucsd(generate_synthetic(root, seed=seed, progress=progress), "synthetic")
