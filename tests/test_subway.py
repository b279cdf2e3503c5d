"""Subway: one long video cut into a training part and test segments, labels from a ranges file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.video_datasets import dataset_config, labels_of, make_subway, truncate, write_video
from hydra.utils import instantiate

from anomaly.data.cache import cached_frames
from anomaly.data.datasets.subway import load_subway, segment_spans
from anomaly.data.video import Video
from anomaly.errors import DataError, MissingDataError

VIDEO = "subway_entrance_turnstiles.avi"
RANGES = ((70, 79), (121, 130))


def load(root, **overrides):
    settings = dict(video=VIDEO, ground_truth="ground_truth.txt", train_minutes=0.1, segment_frames=40)
    return load_subway(root, **{**settings, **overrides})


def test_training_minutes_then_test_segments_cut_from_one_video(tmp_path):
    root = make_subway(tmp_path / "subway", frames=150, fps=10, ranges=RANGES)

    data = load(root)  # 0.1 min at 10 fps: 60 training frames; 90 left: 40 + 50 (a 10-frame tail joins)

    assert [(v.name, v.start, v.stop) for v in data.train] == [("000001-000060", 0, 60)]
    assert [(v.name, v.start, v.stop) for v in data.test] == [
        ("000061-000100", 60, 100),
        ("000101-000150", 100, 150),
    ]
    whole_labels = labels_of(RANGES, 150)
    assert data.test[0].labels.tolist() == whole_labels[60:100].tolist()
    assert data.test[1].labels.tolist() == whole_labels[100:150].tolist()
    assert data.train[0].labels is None


@pytest.mark.parametrize("video", [VIDEO, "subway_exit.mp4"])
def test_segments_decode_to_exactly_the_frames_of_the_whole_video(tmp_path, video):
    root = make_subway(tmp_path / "subway", frames=150, fps=10, video=video)
    data = load(root, video=video)

    pieces = cached_frames([*data.train, *data.test], 227, tmp_path / "cache")
    whole = cached_frames([Video("whole", root / video)], 227, None)[0]

    assert [p.shape for p in pieces] == [(60, 227, 227), (40, 227, 227), (50, 227, 227)]
    assert whole.shape == (150, 227, 227) and whole.dtype == np.uint8
    assert np.array_equal(np.concatenate(pieces), whole)


def test_a_video_that_cannot_seek_is_decoded_from_its_start_instead(tmp_path, monkeypatch):
    root = make_subway(tmp_path / "subway", frames=150, fps=10, video="subway_exit.mp4")
    data = load(root, video="subway_exit.mp4")
    seeking = cached_frames(data.test, 227, None)
    opencv_capture = cv2.VideoCapture

    class NoSeek:
        def __init__(self, *args):
            self.capture = opencv_capture(*args)

        def set(self, *args):
            return False

        def __getattr__(self, name):
            return getattr(self.capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", NoSeek)
    skipping = cached_frames(data.test, 227, None)

    assert all(np.array_equal(a, b) for a, b in zip(seeking, skipping, strict=True))


def test_frame_folder_runs_at_25_fps_unless_told(tmp_path):
    root = make_subway(tmp_path / "subway", frames=150, video="frames")

    assert load(root, video="frames", train_minutes=0.04).train[0].stop == 60  # 0.04 min at 25 fps
    assert load(root, video="frames", fps=10).train[0].stop == 60  # 0.1 min at 10 fps
    frames = cached_frames(load(root, video="frames", fps=10).test, 227, None)
    assert [f.shape[0] for f in frames] == [40, 50]


def test_frame_rate_is_read_from_the_video(tmp_path):
    root = make_subway(tmp_path / "subway", frames=150, fps=20)

    assert load(root, train_minutes=0.05).train[0].stop == 60  # 0.05 min at 20 fps


def test_segment_spans_join_a_short_tail_and_keep_a_long_one():
    assert segment_spans(60, 150, 40) == [(60, 100), (100, 150)]
    assert segment_spans(60, 160, 40) == [(60, 100), (100, 140), (140, 160)]
    assert segment_spans(0, 80, 40) == [(0, 40), (40, 80)]
    assert segment_spans(60, 70, 40) == [(60, 70)]


def test_without_ground_truth_test_segments_are_unlabelled(tmp_path):
    root = make_subway(tmp_path / "subway")

    assert all(v.labels is None for v in load(root, ground_truth=None).test)


def test_ranges_file_accepts_a_header_comments_and_blank_lines(tmp_path):
    lines = ["start,end", "# a comment", "", "61;62", "  99 - 100  # trailing comment", "150 150"]
    root = make_subway(tmp_path / "subway", ground_truth_lines=lines)

    labels = np.concatenate([v.labels for v in load(root).test])

    assert np.flatnonzero(labels).tolist() == [0, 1, 38, 39, 89]


@pytest.mark.parametrize("bad", ["12,abc", "30-20", "0,5", "1,2,3", "70"])
def test_malformed_range_line_is_named_with_its_line(tmp_path, bad):
    root = make_subway(tmp_path / "subway", ground_truth_lines=["# header", "70,79", bad])

    with pytest.raises(DataError, match=r"ground_truth\.txt, line 3: (cannot read|range .*: expected 1-based)"):
        load(root)


def test_range_past_the_end_of_the_video_is_named_with_its_line(tmp_path):
    root = make_subway(tmp_path / "subway", ground_truth_lines=["70,79", "", "140,151"])

    message = r"ground_truth\.txt, line 3: abnormal range 140-151 does not fit the recording, which has 150 frames"
    with pytest.raises(DataError, match=message):
        load(root)


def test_missing_ground_truth_file_is_named(tmp_path):
    root = make_subway(tmp_path / "subway")

    with pytest.raises(DataError, match=r"gt\.csv: no such ground-truth file"):
        load(root, ground_truth="gt.csv")


def test_missing_video_is_named(tmp_path):
    root = make_subway(tmp_path / "subway")

    with pytest.raises(MissingDataError, match=rf"{root / 'exit.avi'}: no such file or folder"):
        load(root, video="exit.avi")
    with pytest.raises(MissingDataError, match=r"nowhere does not exist"):
        load(tmp_path / "nowhere")


def test_training_part_longer_than_the_video_is_an_error(tmp_path):
    root = make_subway(tmp_path / "subway", frames=150, fps=10)

    with pytest.raises(DataError, match=r"150 frames \(0\.2 min at 10 fps\) leave nothing to test"):
        load(root, train_minutes=0.25)


def test_truncated_video_is_named_when_its_segment_is_decoded(tmp_path):
    root = make_subway(tmp_path / "subway", frames=150, fps=10)
    video = truncate(root / VIDEO, 0.8)
    data = load(root)

    assert cached_frames(data.train, 227, None)[0].shape == (60, 227, 227)
    with pytest.raises(DataError, match=rf"{video}: the file announces 150 frames but decoding stopped"):
        cached_frames(data.test, 227, None)


def test_unreadable_video_is_named(tmp_path):
    root = tmp_path / "subway"
    write_video(root / "good.avi", 10)
    (root / VIDEO).write_bytes(b"\x00" * 500)

    with pytest.raises(DataError, match=rf"{root / VIDEO}: OpenCV cannot open this video"):
        load(root, ground_truth=None)


@pytest.mark.parametrize(("dataset", "minutes"), [("subway_entrance", 12), ("subway_exit", 5)])
def test_configs_build_the_loader_with_the_time_stamp_masked(tmp_path, dataset, minutes):
    video = f"{dataset}_turnstiles.AVI"  # the file name the authors distribute
    root = make_subway(tmp_path / dataset, frames=150, fps=10, video=video)
    config = dataset_config(f"dataset={dataset}", f"dataset.root={root}")
    assert config.train_minutes == minutes
    assert [list(rect) for rect in config.mask] == [[181, 193, 81, 114], [166, 193, 126, 215]]

    data = instantiate(config.load, train_minutes=0.1, segment_frames=40)()

    assert (data.name, [v.name for v in data.test]) == (dataset, ["000061-000100", "000101-000150"])
