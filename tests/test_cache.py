"""The frame cache (decode once, reuse, rebuild when stale or broken) and the volumes cut from frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.config import build_module
from helpers.datasets import frame_pattern, write_frames
from PIL import Image

from anomaly.data.cache import cache_key, cached_frames
from anomaly.data.frames import read_image
from anomaly.data.video import Video
from anomaly.data.volumes import TestWindows as Windows  # renamed: pytest would collect a Test* class
from anomaly.data.volumes import TrainingVolumes
from anomaly.errors import ConfigError, DataError

SIZE = 8


@pytest.fixture
def video(tmp_path: Path) -> Video:
    """A video of 4 PNG frames, 12x10, in tmp_path/video."""
    write_frames(tmp_path / "video", 1, 4, (12, 10), first=0, suffix=".png")
    return Video("clip", tmp_path / "video")


def entries(cache: Path) -> list[Path]:
    return sorted(cache.iterdir())


def identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def expected_frames(video: Video, size: int) -> np.ndarray:
    return np.stack([read_image(path, size) for path in sorted(video.source.iterdir())])


# --- cached_frames -----------------------------------------------------------------------------------------


def test_builds_one_entry_per_video(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "nested"  # created on demand
    (frames,) = cached_frames([video], SIZE, cache)
    assert frames.shape == (4, SIZE, SIZE) and frames.dtype == np.uint8
    assert np.array_equal(frames, expected_frames(video, SIZE))
    assert [p.name for p in entries(cache)] == [f"clip-{cache_key(video, SIZE)}.npy"]


def test_reuses_an_entry_unchanged(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (first,) = cached_frames([video], SIZE, cache)
    (entry,) = entries(cache)
    before = identity(entry)
    (second,) = cached_frames([video], SIZE, cache)
    assert identity(entry) == before, "the entry was rewritten"
    assert entries(cache) == [entry]
    assert np.array_equal(first, second)


def test_rebuilds_when_a_source_frame_changes(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (old,) = cached_frames([video], SIZE, cache)
    changed = video.source / "002.png"
    Image.fromarray(255 - frame_pattern(1, 2, (12, 10))).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    (new,) = cached_frames([video], SIZE, cache)
    assert len(entries(cache)) == 2, "a new entry under a new key"
    assert np.array_equal(new, expected_frames(video, SIZE))
    assert not np.array_equal(new[2], old[2])
    assert np.array_equal(new[[0, 1, 3]], old[[0, 1, 3]])


def test_rebuilds_when_a_frame_is_added(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached_frames([video], SIZE, cache)
    Image.fromarray(frame_pattern(1, 4, (12, 10))).save(video.source / "004.png")
    (frames,) = cached_frames([Video(video.name, video.source)], SIZE, cache)  # the next run's loader
    assert len(frames) == 5


def test_another_size_is_another_entry(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (small,) = cached_frames([video], 6, cache)
    (large,) = cached_frames([video], 10, cache)
    assert small.shape == (4, 6, 6) and large.shape == (4, 10, 10)
    assert cache_key(video, 6) != cache_key(video, 10)
    assert len(entries(cache)) == 2


def test_a_slice_of_a_video_is_another_entry(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    whole, part = video, Video("clip", video.source, start=1, stop=3)
    frames_whole, frames_part = cached_frames([whole, part], SIZE, cache)
    assert np.array_equal(frames_part, frames_whole[1:3])
    assert len(entries(cache)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:40], id="header-only"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"garbage" * 50, id="not-npy"),
    ],
)
def test_a_broken_entry_is_rebuilt_not_read(video: Video, tmp_path: Path, damage) -> None:
    cache = tmp_path / "cache"
    cached_frames([video], SIZE, cache)
    (entry,) = entries(cache)
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    (frames,) = cached_frames([video], SIZE, cache)
    assert np.array_equal(frames, expected_frames(video, SIZE))
    assert entry.read_bytes() == good


def test_leaves_no_temporary_files(video: Video, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    other = Video("other", video.source, start=2)
    cached_frames([video, other], SIZE, cache)
    cached_frames([video, other], 6, cache)
    names = [p.name for p in entries(cache)]
    assert len(names) == 4
    assert all(name.endswith(".npy") and not name.startswith(".") for name in names), names


def test_without_a_cache_folder_decodes_in_memory(video: Video, tmp_path: Path) -> None:
    (frames,) = cached_frames([video], SIZE, None)
    assert np.array_equal(frames, expected_frames(video, SIZE))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video"]


# --- training volumes --------------------------------------------------------------------------------------


def numbered_frames(count: int) -> np.ndarray:
    """(count, 2, 2) uint8 frames; every pixel of frame k holds k."""
    return np.repeat(np.arange(count, dtype=np.uint8), 4).reshape(count, 2, 2)


def frame_indices(volume) -> list[int]:
    return [int(v) for v in volume[:, 0, 0, 0]]


@pytest.mark.parametrize(
    ("strides", "count"),
    [((1,), 17), ((2,), 14), ((3,), 11), ((1, 2, 3), 17 + 14 + 11)],
)
def test_training_volume_count(strides: tuple[int, ...], count: int) -> None:
    """A volume of L frames at stride s needs (L - 1) * s + 1 frames: T - (L - 1) * s starts."""
    assert len(TrainingVolumes([numbered_frames(20)], length=4, strides=strides)) == count


def test_training_volume_count_over_videos_too_short_for_a_stride() -> None:
    volumes = TrainingVolumes([numbered_frames(20), numbered_frames(7)], length=4, strides=(1, 2, 3))
    assert len(volumes) == (17 + 4) + (14 + 1) + (11 + 0)


def test_training_volumes_are_every_start_at_every_stride() -> None:
    volumes = TrainingVolumes([numbered_frames(12)], length=3, strides=(1, 2, 3))
    cut = [frame_indices(volumes[i]) for i in range(len(volumes))]
    want = [[start + k * stride for k in range(3)] for stride in (1, 2, 3) for start in range(12 - 2 * stride)]
    assert sorted(cut) == sorted(want)


def test_stride_two_volume_takes_every_second_frame() -> None:
    volumes = TrainingVolumes([numbered_frames(10)], length=4, strides=(2,))
    first = volumes[0]
    assert first.shape == (4, 1, 2, 2) and first.dtype == torch.uint8
    assert frame_indices(first) == [0, 2, 4, 6]
    assert frame_indices(volumes[len(volumes) - 1]) == [3, 5, 7, 9]


def test_volumes_stay_uint8_and_the_model_scales_them_to_zero_one() -> None:
    frames = np.full((3, 2, 2), 255, dtype=np.uint8)
    frames[1] = 51
    volume = TrainingVolumes([frames], length=3, strides=(1,))[0]
    assert volume.dtype == torch.uint8 and volume[:, 0, 0, 0].tolist() == [255, 51, 255]
    inputs, target = build_module("tau=1", "task=prediction").split(volume[None, :2])
    assert inputs.dtype == torch.float32
    assert [inputs.flatten()[0].item(), target.flatten()[0].item()] == pytest.approx([1.0, 0.2])


@pytest.mark.parametrize("strides", [(), (0,), (1, -2), (1.5,), (True,)])
def test_strides_must_be_positive(strides: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"need one or more positive temporal strides"):
        TrainingVolumes([numbered_frames(10)], length=2, strides=strides)


# --- test windows ------------------------------------------------------------------------------------------


def test_test_windows_slide_with_stride_one_and_score_their_last_frame() -> None:
    windows = Windows([numbered_frames(6), numbered_frames(4)], length=3)
    assert len(windows) == (6 - 3 + 1) + (4 - 3 + 1)
    scored: dict[int, list[int]] = {0: [], 1: []}
    for i in range(len(windows)):
        volume, video, frame, label = windows[i]
        indices = frame_indices(volume)
        assert indices == list(range(indices[0], indices[0] + 3))  # consecutive frames
        assert frame == indices[0] + 3 - 1  # start + length - 1
        assert label == -1  # no ground truth given
        scored[video].append(frame)
    # the first length - 1 frames of each video get no score
    assert scored == {0: [2, 3, 4, 5], 1: [2, 3]}


def test_test_windows_carry_the_label_of_their_scored_frame() -> None:
    labels = [np.array([0, 0, 0, 1, 1, 0]), None]
    windows = Windows([numbered_frames(6), numbered_frames(4)], length=3, labels=labels)
    items = [windows[i][1:] for i in range(len(windows))]
    assert items == [(0, 2, 0), (0, 3, 1), (0, 4, 1), (0, 5, 0), (1, 2, -1), (1, 3, -1)]


def test_test_windows_of_a_video_shorter_than_a_window() -> None:
    windows = Windows([numbered_frames(2), numbered_frames(5)], length=3)
    assert [windows[i][1] for i in range(len(windows))] == [1, 1, 1]


@pytest.mark.parametrize(("errno", "reason"), [(28, "No space left on device"), (13, "Permission denied")])
def test_a_cache_that_cannot_be_written_is_named_and_leaves_no_half_entry(
    video: Video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno: int, reason: str
) -> None:
    """A full disk, or a folder this user cannot write (the tests run as root, so the OS is made to refuse)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno, os.strerror(errno))

    monkeypatch.setattr(np, "save", refuse)
    cache = tmp_path / "cache"
    with pytest.raises(
        DataError, match=rf"cannot write the frame cache entry {cache}/clip-.*\.npy \({reason}\); .*ANOMALY_CACHE"
    ):
        cached_frames([video], SIZE, cache)
    assert entries(cache) == []
