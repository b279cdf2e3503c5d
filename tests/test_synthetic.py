"""The embedded ``synthetic`` dataset: UCSD layout, ground truth, determinism, crash safety, and anomalies
that are real (checked on the pixels, without a network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from anomaly.data.datasets import synthetic
from anomaly.data.datasets.synthetic import PLAN, generate_synthetic, load_synthetic
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError

SCORED_FROM = 9  # prediction with tau=5: the first 2*tau-1 frames of a test video get no score


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("data") / "synthetic", progress=False)


@pytest.fixture(scope="module")
def dataset(root: Path) -> VideoDataset:
    return load_ucsd(root, "synthetic")


def _frames(video: Video) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), dtype=np.float64) for p in sorted(video.source.glob("*.tif"))])


def _kinds(index: int) -> set[str]:
    return {kind for kind, _ in PLAN[index % len(PLAN)]}


def test_the_ucsd_reader_finds_every_video_in_the_original_layout(root: Path, dataset: VideoDataset) -> None:
    assert [v.name for v in dataset.train] == [f"Train{i:03d}" for i in range(1, 9)]
    assert [v.name for v in dataset.test] == [f"Test{i:03d}" for i in range(1, 7)]
    assert all(len(v) == 80 for v in dataset.train + dataset.test)
    assert sorted(p.name for p in (root / "Test" / "Test001").iterdir())[:2] == ["001.tif", "002.tif"]
    with Image.open(root / "Train" / "Train001" / "080.tif") as image:
        assert (image.mode, image.size) == ("L", (120, 80))
    assert next(iter(dataset.test[0].frames(227))).shape == (227, 227)


def test_every_test_video_has_normal_and_abnormal_scored_frames(dataset: VideoDataset) -> None:
    for video in dataset.test:
        scored = video.labels[SCORED_FROM:]
        assert 0.3 <= scored.mean() <= 0.7, video.name
        assert scored[0] == 0, f"{video.name}: the first scored frames are normal"


def test_ground_truth_has_one_line_per_test_video_and_two_ranges_for_two_events(root: Path) -> None:
    lines = [line for line in (root / "Test" / "UCSDsynthetic.m").read_text().splitlines() if "gt_frame" in line]
    assert len(lines) == 6
    assert all(line.startswith("TestVideoFile{end+1}.gt_frame = [") and line.endswith("];") for line in lines)
    assert [line.count(":") for line in lines] == [len(PLAN[i]) for i in range(6)]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = generate_synthetic(tmp_path / "again" / "synthetic", seed=0)
    assert "frame" in capsys.readouterr().err  # the progress bar
    other = generate_synthetic(tmp_path / "other" / "synthetic", seed=1, progress=False)
    for name in ("Train/Train003/040.tif", "Test/Test002/050.tif", "Test/UCSDsynthetic.m"):
        assert (again / name).read_bytes() == (root / name).read_bytes()
        assert (other / name).read_bytes() != (root / name).read_bytes()


def test_a_second_call_finds_the_dataset_complete_and_rewrites_nothing(root: Path) -> None:
    files = [root / "Train" / "Train001" / "001.tif", root / "Test" / "UCSDsynthetic.m", root / "synthetic.json"]
    before = [p.stat().st_mtime_ns for p in files]
    assert generate_synthetic(root, progress=False) == root
    assert [p.stat().st_mtime_ns for p in files] == before


def test_a_killed_generation_leaves_no_dataset_and_its_leftover_is_ignored(tmp_path: Path, root: Path) -> None:
    # What SIGKILL leaves behind: a half-written build folder beside the root, never the root itself.
    leftover = tmp_path / ".synthetic.partial-killed"
    (leftover / "Train" / "Train001").mkdir(parents=True)
    (leftover / "Train" / "Train001" / "001.tif").write_bytes((root / "Train/Train001/001.tif").read_bytes())
    target = tmp_path / "synthetic"
    with pytest.raises(DataError):
        load_ucsd(target, "synthetic")
    assert generate_synthetic(target, progress=False) == target
    assert len(load_ucsd(target, "synthetic").test) == 6
    assert leftover.is_dir()  # another process's build is not ours to delete


def test_an_interrupted_generation_cleans_up_and_the_next_one_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render, calls = synthetic._render, []

    def interrupted(*args, **kwargs):  # Ctrl-C in the middle of the test videos
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return render(*args, **kwargs)

    monkeypatch.setattr(synthetic, "_render", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(tmp_path / "synthetic", progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    generate_synthetic(tmp_path / "synthetic", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]


def test_a_folder_that_is_not_a_complete_dataset_is_refused_not_overwritten(tmp_path: Path, root: Path) -> None:
    half = tmp_path / "synthetic"
    (half / "Train" / "Train001").mkdir(parents=True)
    (half / "Test").mkdir()
    with pytest.raises(DataError, match="not one"):
        generate_synthetic(half, progress=False)
    with pytest.raises(DataError, match="another root"):
        generate_synthetic(root, seed=7, progress=False)  # complete, but with other settings
    assert generate_synthetic(tmp_path / "empty", progress=False)  # an empty folder is fine
    (tmp_path / "empty2").mkdir()
    assert len(load_synthetic(tmp_path / "empty2", progress=False).train) == 8


def test_fast_objects_and_vehicles_raise_the_motion_energy(dataset: VideoDataset) -> None:
    for index, video in enumerate(dataset.test):
        if _kinds(index) & {"fast", "vehicle"}:
            energy = np.abs(np.diff(_frames(video), axis=0)).mean(axis=(1, 2))  # of frames 1..T-1
            labels = video.labels[1:]
            assert energy[labels == 1].mean() > 1.25 * energy[labels == 0].mean(), video.name


def _objects(frame: np.ndarray, ground: np.ndarray) -> list[tuple[float, float, int]]:
    """(x, y, pixels) of each foreground blob that does not touch the left or right edge."""
    blobs, count = ndimage.label(np.abs(frame - ground) > 50)
    found = []
    for blob in range(1, count + 1):
        ys, xs = np.nonzero(blobs == blob)
        if xs.min() > 0 and xs.max() < frame.shape[1] - 1:
            found.append((xs.mean(), ys.mean(), len(xs)))
    return found


def _moving_left(frames: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """Per frame: is some blob just left of the nearest blob of the frame before (crude tracking)?"""
    flags = [False]
    for before, now in zip(frames[:-1], frames[1:], strict=True):
        previous = _objects(before, ground)
        moves = [
            min((abs(x - x0) + abs(y - y0), x - x0) for x0, y0, _ in previous)
            for x, y, _ in _objects(now, ground)
            if previous
        ]
        flags.append(any(distance < 4 and dx < -0.5 for distance, dx in moves))
    return np.array(flags)


def test_walkers_go_against_the_flow_only_in_abnormal_frames(dataset: VideoDataset) -> None:
    ground = np.median(_frames(dataset.train[0]), axis=0)  # walkers move on: the median is the ground
    assert _moving_left(_frames(dataset.train[0]), ground).mean() < 0.02
    for index, video in enumerate(dataset.test):
        if "against" in _kinds(index):
            left = _moving_left(_frames(video), ground)
            assert left[video.labels == 1].mean() > 0.7, video.name
            assert left[video.labels == 0].mean() < 0.1, video.name


def test_the_vehicle_is_brighter_and_bigger_than_anything_in_training(dataset: VideoDataset) -> None:
    training = np.stack([_frames(video) for video in dataset.train])
    ground = np.median(training[0], axis=0)
    biggest = max(n for frame in training.reshape(-1, 80, 120)[::3] for *_, n in _objects(frame, ground))
    for index, video in enumerate(dataset.test):
        if "vehicle" in _kinds(index):
            abnormal = _frames(video)[video.labels == 1]
            inside = abnormal[len(abnormal) // 4 : -len(abnormal) // 4]  # wholly in view, not at an edge
            assert inside.max(axis=(1, 2)).min() > training.max() + 10, video.name
            assert max(n for *_, n in _objects(inside[0], ground)) > 2 * biggest, video.name
