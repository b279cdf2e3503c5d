"""Frame-level ground truth (REFERENCE.md section 5): the .m and .mat formats, and labels from ranges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from helpers.datasets import PED2, crashing_mat, write_ucsd_m, write_ucsd_mat

from anomaly.data.groundtruth import ranges_to_labels, read_ucsd_ground_truth, read_ucsd_m, read_ucsd_mat
from anomaly.data.matfile import iter_mats
from anomaly.errors import DataError

PED2_RANGES = [
    [(61, 180)], [(95, 180)], [(1, 146)], [(31, 180)], [(1, 129)], [(1, 159)],
    [(46, 180)], [(1, 180)], [(1, 120)], [(1, 150)], [(1, 180)], [(88, 180)],
]  # fmt: skip


# --- .m ----------------------------------------------------------------------------------------------------


def test_m_single_ranges(tmp_path: Path) -> None:
    path = tmp_path / "UCSDped2.m"
    path.write_text(
        "TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [61:180];\nTestVideoFile{end+1}.gt_frame = [95:180];\n"
    )
    assert read_ucsd_m(path) == [[(61, 180)], [(95, 180)]]


def test_m_several_ranges_per_video(tmp_path: Path) -> None:
    path = tmp_path / "UCSDped1.m"
    path.write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{end+1}.gt_frame = [5:90, 140:200];\n"
        "TestVideoFile{end+1}.gt_frame = [1:100];\n"
        "TestVideoFile{end+1}.gt_frame = [10:20,30:40 , 50:60];\n"
    )
    assert read_ucsd_m(path) == [[(5, 90), (140, 200)], [(1, 100)], [(10, 20), (30, 40), (50, 60)]]


def test_m_single_frame_range(tmp_path: Path) -> None:
    path = tmp_path / "one.m"
    path.write_text("TestVideoFile{end+1}.gt_frame = [7];\n")
    assert read_ucsd_m(path) == [[(7, 7)]]


def test_m_written_by_the_test_generator_reads_back(tmp_path: Path) -> None:
    gt = [[(1, 3)], [(2, 4), (6, 9)]]
    assert read_ucsd_m(write_ucsd_m(tmp_path / "gt.m", gt)) == gt


def test_m_malformed_range_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "UCSDped2.m"
    path.write_text(
        "TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [61:180];\nTestVideoFile{end+1}.gt_frame = [95-180];\n"
    )
    with pytest.raises(DataError, match=r"UCSDped2\.m, line 3: cannot read range '95-180'"):
        read_ucsd_m(path)


def test_m_unreadable_gt_line_is_an_error_not_skipped(tmp_path: Path) -> None:
    """Skipping a line would pair every later video with the ranges of the next one."""
    path = tmp_path / "UCSDped2.m"
    path.write_text(
        "TestVideoFile{end+1}.gt_frame = [61:180];\n"
        "TestVideoFile{end+1}.gt_frame = [95:180;\n"
        "TestVideoFile{end+1}.gt_frame = [1:146];\n"
    )
    with pytest.raises(DataError, match=r"UCSDped2\.m, line 2: cannot read"):
        read_ucsd_m(path)


@pytest.mark.parametrize(
    "line",
    [
        "TestVideoFile{end+1}.gt_frme = [95:180];",  # misspelt: would have been skipped, shifting later videos
        "TestVideoFile{end+1}.gt_frame = 95:180;",
        "gt_frame = [95:180]; TestVideoFile{end+1}.gt_frame = [1:2];",
        "disp('hello')",
    ],
)
def test_m_any_line_that_is_not_a_video_entry_is_an_error(tmp_path: Path, line: str) -> None:
    path = tmp_path / "UCSDped2.m"
    path.write_text(f"TestVideoFile = {{}};\nTestVideoFile{{end+1}}.gt_frame = [61:180];\n{line}\n")
    with pytest.raises(DataError, match=r"UCSDped2\.m, line 3: cannot read .*expected 'TestVideoFile\{end\+1\}"):
        read_ucsd_m(path)


def test_m_comments_are_comments_not_videos(tmp_path: Path) -> None:
    path = tmp_path / "UCSDped2.m"
    path.write_text(
        "% Ped2 ground truth\n"
        "TestVideoFile = {};  % one entry per test video\n"
        "TestVideoFile{end+1}.gt_frame = [61:180];\n"
        "% TestVideoFile{end+1}.gt_frame = [1:10];   (a video left out)\n"
        "\n"
        "TestVideoFile{end+1}.gt_frame = [95:180]; % cyclist\n"
    )
    assert read_ucsd_m(path) == [[(61, 180)], [(95, 180)]]


@pytest.mark.parametrize(("body", "message"), [("0:10", "range 0-10"), ("20:10", "range 20-10")])
def test_m_ranges_must_be_one_based_and_ordered(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "UCSDped2.m"
    path.write_text(f"TestVideoFile{{end+1}}.gt_frame = [{body}];\n")
    with pytest.raises(DataError, match=rf"UCSDped2\.m, line 1: {message}: expected 1-based"):
        read_ucsd_m(path)


def test_m_without_ground_truth_lines(tmp_path: Path) -> None:
    path = tmp_path / "empty.m"
    path.write_text("TestVideoFile = {};\n")
    with pytest.raises(DataError, match=r"empty\.m: no 'TestVideoFile\{end\+1\}\.gt_frame"):
        read_ucsd_m(path)


# --- .mat --------------------------------------------------------------------------------------------------


def test_mat_cell_of_2xk_arrays(tmp_path: Path) -> None:
    gt = [[(61, 180)], [(5, 90), (140, 200)], [(1, 1)]]
    assert read_ucsd_mat(write_ucsd_mat(tmp_path / "ped1.mat", gt)) == gt


def test_mat_integer_cells(tmp_path: Path) -> None:
    """The circulating ped2.mat stores uint8 cells."""
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.array([[61], [180]], dtype=np.uint8)
    cells[0, 1] = np.array([[5, 140], [90, 200]], dtype=np.uint8)
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(path, {"gt": cells})
    assert read_ucsd_mat(path) == [[(61, 180)], [(5, 90), (140, 200)]]


def test_mat_without_gt_variable(tmp_path: Path) -> None:
    path = tmp_path / "labels.mat"
    scipy.io.savemat(path, {"volLabel": np.zeros((2, 2))})
    with pytest.raises(DataError, match=r"labels\.mat: no variable 'gt'; found \['volLabel'\]"):
        read_ucsd_mat(path)


def test_mat_cell_of_wrong_shape(tmp_path: Path) -> None:
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.array([[1, 2, 3]], dtype=np.float64)
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(path, {"gt": cells})
    with pytest.raises(DataError, match=r"ped2\.mat: 'gt' cell 1 must be a 2xK numeric array"):
        read_ucsd_mat(path)


@pytest.mark.parametrize(("value", "shown"), [(61.7, "61.7"), (np.nan, "nan"), (np.inf, "inf")])
def test_mat_frame_numbers_must_be_whole(tmp_path: Path, value: float, shown: str) -> None:
    """61.7 used to become 61 and NaN -9223372036854775808, silently."""
    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.array([[value], [180.0]])
    path = tmp_path / "ped2.mat"
    scipy.io.savemat(path, {"gt": cells})
    message = rf"ped2\.mat: 'gt' cell 1 holds \[{shown}, 180\.0\]: frame numbers must be whole"
    with pytest.raises(DataError, match=message):
        read_ucsd_mat(path)


def test_a_mat_file_that_crashes_the_reader_is_an_error_not_a_dead_process(tmp_path: Path) -> None:
    path = crashing_mat(tmp_path / "ped2.mat")
    crash = subprocess.run([sys.executable, "-c", f"import scipy.io; scipy.io.loadmat({str(path)!r})"], check=False)
    assert crash.returncode < 0  # scipy itself dies on it (a signal), which is why it is read in a child
    with pytest.raises(DataError, match=r"ped2\.mat: cannot read this MATLAB file: the reader crashed"):
        read_ucsd_mat(path)
    # the files after it are still read
    good = write_ucsd_mat(tmp_path / "good.mat", [[(1, 2)]])
    outcomes = list(iter_mats([path, good, path, good]))
    assert [type(o).__name__ for o in outcomes] == ["DataError", "dict", "DataError", "dict"]


def test_mat_not_a_matlab_file(tmp_path: Path) -> None:
    path = tmp_path / "ped2.mat"
    path.write_bytes(b"this is not a MATLAB file" * 20)
    with pytest.raises(DataError, match=r"ped2\.mat: cannot read this MATLAB file"):
        read_ucsd_mat(path)


def test_format_is_chosen_by_suffix(tmp_path: Path) -> None:
    gt = [[(2, 5)], [(1, 3), (7, 8)]]
    assert read_ucsd_ground_truth(write_ucsd_m(tmp_path / "UCSDped2.m", gt)) == gt
    assert read_ucsd_ground_truth(write_ucsd_mat(tmp_path / "ped2.mat", gt)) == gt


# --- labels ------------------------------------------------------------------------------------------------


def test_labels_from_one_based_inclusive_ranges() -> None:
    labels = ranges_to_labels([(2, 3), (5, 5)], 6, "Test001")
    assert labels.tolist() == [0, 1, 1, 0, 1, 0]


def test_labels_whole_video_and_no_range() -> None:
    assert ranges_to_labels([(1, 4)], 4, "v").tolist() == [1, 1, 1, 1]
    assert ranges_to_labels([], 3, "v").tolist() == [0, 0, 0]


@pytest.mark.parametrize("bad", [(170, 181), (0, 5), (9, 4)])
def test_range_outside_the_video_names_it(bad: tuple[int, int]) -> None:
    with pytest.raises(DataError, match=rf"range {bad[0]}-{bad[1]} does not fit Test003, which has 180 frames"):
        ranges_to_labels([(1, 10), bad], 180, "Test003")


# --- the real Ped2 files, when ../shared is present --------------------------------------------------------


@pytest.mark.skipif(not (PED2 / "UCSDped2.m").is_file(), reason="no ../shared/data/ped2")
def test_ped2_m_is_the_reference() -> None:
    assert read_ucsd_m(PED2 / "UCSDped2.m") == PED2_RANGES


@pytest.mark.skipif(not (PED2 / "ped2.mat").is_file(), reason="no ../shared/data/ped2")
def test_ped2_mat_is_the_reference() -> None:
    assert read_ucsd_mat(PED2 / "ped2.mat") == PED2_RANGES
