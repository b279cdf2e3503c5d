"""Live detection and calibration (issue 11) on tiny generated data: the same scores from a stream as from a
file, files that survive a kill, and clear errors for an unreadable source, a missing calibration and
weights of another tau/task."""

from __future__ import annotations

import csv
import http.server
import json
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.entrypoints import FAST, ROOT, results, run_entry, user_environment

from anomaly.hardware import emulated_bf16

FRAMES = 40


def jpeg_frames(count: int = FRAMES) -> list[bytes]:
    """JPEG images of a bright square crossing a textured ground, fast in the second half."""
    rng = np.random.default_rng(0)
    ground = rng.integers(40, 90, size=(48, 64), dtype=np.uint8)
    images = []
    for t in range(count):
        frame = ground.copy()
        x = (2 * t if t < count // 2 else 2 * t + 6 * (t - count // 2)) % 56
        frame[20:28, x : x + 8] = 220
        images.append(cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))[1].tobytes())
    return images


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tau=2 model trained (one short epoch) and calibrated by train.py on a tiny UCSD-layout set, then tested
    with the calibrated protocol."""
    from helpers.datasets import make_ucsd_original

    folder = tmp_path_factory.mktemp("detect")
    make_ucsd_original(folder / "data" / "ped2", train_frames=(12, 12, 10), test_frames=(14, 12), size=(24, 16),
                       gt=[[(8, 14)], [(3, 6)]])  # fmt: skip
    run_entry("train.py", ["dataset=ped2", *FAST, "scoring.normalization=calibrated", "hydra.run.dir=outputs/trained"],
              folder)  # fmt: skip
    return folder


def checkpoint(folder: Path) -> Path:
    return folder / "outputs/trained/checkpoints/last.ckpt"


def detect_rows(folder: Path) -> list[dict[str, str]]:
    [run] = sorted((folder / "outputs/detect/runs").iterdir())[-1:]
    with open(run / "scores.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_calibrates_its_checkpoint_on_held_out_normal_video(trained: Path) -> None:
    [result] = [r for r in results(trained) if r["kind"] == "train"]
    assert result["calibration"]["source"] == "ped2 heldout" and result["calibration"]["windows"] > 0
    assert result["calibration"]["stored_in"] == str(checkpoint(trained))
    assert result["protocol"]["normalization"] == "calibrated" and "op_tpr" in result["metrics"]  # its test used it


@pytest.fixture
def mjpeg_server() -> Iterator[str]:
    """An HTTP MJPEG stream (multipart/x-mixed-replace) of jpeg_frames() on 127.0.0.1, as IP cameras serve."""
    frames = jpeg_frames()

    class Stream(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for jpeg in frames:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                self.wfile.write(jpeg + b"\r\n")
                time.sleep(0.02)

        def log_message(self, *args: object) -> None:
            pass

    server = socketserver.TCPServer(("127.0.0.1", 0), Stream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()


def test_a_stream_gives_the_same_scores_as_the_same_frames_from_a_file(trained: Path, mjpeg_server: str) -> None:
    clip = trained / "clip.mjpeg"  # the same JPEG images, one after the other: FFmpeg decodes both alike
    clip.write_bytes(b"".join(jpeg_frames()))
    run_entry("detect.py", [f"source={clip}", f"weights={checkpoint(trained)}", "tau=2"], trained)
    from_file = detect_rows(trained)
    run_entry("detect.py", [f"source={mjpeg_server}", f"weights={checkpoint(trained)}", "tau=2"], trained)
    from_stream = detect_rows(trained)
    assert len(from_file) == len(from_stream) == FRAMES  # one row per frame
    assert [r["error"] for r in from_file[:3]] == ["", "", ""]  # tau=2: the first 3 frames complete no window
    errors = [(float(a["error"]), float(b["error"])) for a, b in zip(from_file[3:], from_stream[3:], strict=True)]
    np.testing.assert_allclose(*zip(*errors, strict=True), rtol=1e-5)
    assert [r["alarm"] for r in from_file] == [r["alarm"] for r in from_stream]
    [run] = sorted((trained / "outputs/detect/runs").iterdir())[-1:]
    assert not (run / "overlay.mp4").exists()  # live source: no overlay unless asked
    assert json.loads((run / "events.json").read_text())["live"] is True


def test_a_file_gets_an_overlay_video_and_a_picture(trained: Path) -> None:
    clip = trained / "clip.mjpeg"
    clip.write_bytes(b"".join(jpeg_frames()))
    run_entry("detect.py", [f"source={clip}", f"weights={checkpoint(trained)}", "tau=2"], trained)
    [run] = sorted((trained / "outputs/detect/runs").iterdir())[-1:]
    video = cv2.VideoCapture(str(run / "overlay.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert (run / "regularity.png").stat().st_size > 0
    events = json.loads((run / "events.json").read_text())
    assert events["complete"] and events["frames"] == FRAMES and events["calibration_source"] == "ped2 heldout"


def test_a_source_shorter_than_a_window_says_that_nothing_was_scored(trained: Path) -> None:
    clip = trained / "short.mjpeg"
    clip.write_bytes(b"".join(jpeg_frames(3)))  # tau=2 prediction: a window is 4 frames
    done = run_entry("detect.py", [f"source={clip}", f"weights={checkpoint(trained)}", "tau=2"], trained)
    output = done.stdout + done.stderr
    assert "no frame was scored: 3 frame(s) read, and the first score needs a whole window of 4 frames" in output
    [result] = [r for r in results(trained) if r.get("source") == str(clip)]
    assert result["status"] == "ok" and (result["frames"], result["scored_frames"]) == (3, 0)
    assert [row["error"] for row in detect_rows(trained)] == ["", "", ""]


def test_bf16_scores_and_warns_where_the_cpu_emulates_it(trained: Path) -> None:
    clip = trained / "bf16.mjpeg"
    clip.write_bytes(b"".join(jpeg_frames()))
    done = run_entry("detect.py", [f"source={clip}", f"weights={checkpoint(trained)}", "tau=2", "precision=bf16"],
                     trained)  # fmt: skip
    warned = "precision=bf16: this CPU" in done.stdout + done.stderr
    assert warned == (emulated_bf16(torch.device("cpu")) is not None)
    [result] = [r for r in results(trained) if r.get("source") == str(clip)]
    assert result["status"] == "ok" and result["scored_frames"] > 0


def test_a_killed_run_leaves_complete_files(trained: Path) -> None:
    frames = trained / "many"
    frames.mkdir()
    images = jpeg_frames(400)
    for k, jpeg in enumerate(images):
        (frames / f"{k:04d}.jpg").write_bytes(jpeg)
    environment = user_environment(trained) | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "detect.py"), f"source={frames}", f"weights={checkpoint(trained)}", "tau=2",
               "overlay=false", "batch_size=1", "hydra.run.dir=outputs/killed"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=trained, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    scores = trained / "outputs/killed/scores.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not scores.exists() or scores.read_text().count("\n") < 60):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    text = scores.read_text()
    assert text.endswith("\n") and 60 <= text.count("\n") < 401  # killed part way
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["frame", "time_s", "error", "score", "alarm"]
    assert all(len(row) == 5 for row in rows) and [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    json.loads((trained / "outputs/killed/events.json").read_text())  # complete JSON, if not a complete run


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere.avi", "source=nowhere.avi: no such file or folder"),
        ("junk.avi", "source=junk.avi: OpenCV cannot open"),
    ],
)
def test_an_unreadable_source_is_named(trained: Path, source: str, message: str) -> None:
    (trained / "junk.avi").write_text("not a video")
    done = run_entry("detect.py", [f"source={source}", f"weights={checkpoint(trained)}", "tau=2"], trained, check=False)
    assert done.returncode == 1 and message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("fps=abc", "fps='abc': the source's frame rate, a number > 0"),  # once: a traceback per frame
        ("fps=-5", "fps=-5: the source's frame rate, a number > 0"),  # once: negative times, silently
        ("fps=true", "fps=True: the source's frame rate, a number > 0"),  # a bool is an int to Python
        ("overlay=maybe", "overlay='maybe': expected auto"),  # once: taken as auto
        ("device=tpu", "device='tpu': expected auto, cpu, cuda or cuda:N"),
        ("mask=[1,2]", "mask rectangle 1 (dataset.mask, or mask= of detect.py): expected [row0, row1"),  # TypeError
    ],
)
def test_bad_settings_of_detect_are_named(trained: Path, setting: str, message: str) -> None:
    source = f"source={trained / 'data/ped2/Test/Test001'}"
    done = run_entry("detect.py", [source, f"weights={checkpoint(trained)}", "tau=2", setting], trained, check=False)
    assert done.returncode == 1 and message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_weights_without_calibration_are_refused_with_how_to_make_one(trained: Path) -> None:
    from anomaly.model.caffe import write_caffemodel
    from anomaly.model.convlstm import EncoderForecaster

    weights = trained / "uncalibrated.caffemodel"
    write_caffemodel(EncoderForecaster(), weights)
    done = run_entry("detect.py", [f"source={trained / 'data/ped2/Test/Test001'}", f"weights={weights}"], trained,
                     check=False)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1 and f"{weights}: no calibration found" in output
    assert f"python calibrate.py dataset=NAME weights={weights}" in output


def test_calibrate_py_writes_a_sidecar_that_detect_finds_and_checks(trained: Path) -> None:
    from anomaly.model.caffe import write_caffemodel
    from anomaly.model.convlstm import EncoderForecaster

    weights = trained / "authors_like.caffemodel"
    write_caffemodel(EncoderForecaster(), weights)
    run_entry("calibrate.py", ["dataset=ped2", "tau=2", f"weights={weights}"], trained)
    sidecar = Path(f"{weights}.calibration.json")
    assert json.loads(sidecar.read_text())["source"] == "ped2 train"
    run_entry("detect.py", [f"source={trained / 'data/ped2/Test/Test001'}", f"weights={weights}", "tau=2"], trained)
    write_caffemodel(EncoderForecaster(), weights)  # other weights under the same name: the sidecar no longer fits
    done = run_entry("detect.py", [f"source={trained / 'data/ped2/Test/Test001'}", f"weights={weights}", "tau=2"],
                     trained, check=False)  # fmt: skip
    assert done.returncode == 1 and "was made for other weights" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{weights}/c.json", "cannot write the calibration to {weights}/c.json ({weights} is a file, not a folder)"),
        ("data", "cannot write the calibration to data (it is a folder)"),
        ("{weights}", "is the weights file itself"),
    ],
)
def test_calibrate_py_refuses_an_unwritable_out_before_scoring(trained: Path, out: str, message: str) -> None:
    from anomaly.model.caffe import write_caffemodel
    from anomaly.model.convlstm import EncoderForecaster

    weights = trained / "unwritable_out.caffemodel"
    write_caffemodel(EncoderForecaster(), weights)
    before = weights.read_bytes()
    arguments = ["dataset=ped2", "tau=2", f"weights={weights}", f"out={out.format(weights=weights)}"]
    done = run_entry("calibrate.py", arguments, trained, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and message.format(weights=weights) in output, output
    assert "Traceback" not in output and "Predicting" not in output  # refused before any window was scored
    assert weights.read_bytes() == before


def test_weights_of_another_tau_or_task_are_refused(trained: Path) -> None:
    source = trained / "data/ped2/Test/Test001"
    for overrides in (["tau=5"], ["tau=2", "task=reconstruction"]):
        done = run_entry("detect.py", [f"source={source}", f"weights={checkpoint(trained)}", *overrides], trained,
                         check=False)  # fmt: skip
        assert (
            done.returncode == 1
            and f"{checkpoint(trained)} was trained with tau=2 task=prediction" in done.stdout + done.stderr
        )


def test_eval_reports_the_calibrated_protocol_beside_the_papers(trained: Path) -> None:
    weights = checkpoint(trained)
    run_entry("eval.py", ["dataset=ped2", "tau=2", f"weights={weights}", "logger=none"], trained)
    calibrated_scoring = "scoring.normalization=calibrated"
    run_entry("eval.py", ["dataset=ped2", "tau=2", f"weights={weights}", "logger=none", calibrated_scoring], trained)
    paper, calibrated = sorted(
        (r for r in results(trained) if r["kind"] == "eval"),
        key=lambda r: r["protocol"]["normalization"] == "calibrated",
    )
    assert "op_tpr" not in paper["metrics"]
    metrics = calibrated["metrics"]
    for key in ("auc", "eer", "op_tpr", "op_fpr", "false_alarms_per_minute", "events_detected", "events_total"):
        assert key in metrics, key
    assert metrics["events_total"] == 2 and len(calibrated["gt_events"]) == 2
    report = subprocess.run([sys.executable, "-m", "anomaly.reporting", str(trained / "outputs/eval")], cwd=trained,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "{normalization=calibrated}" in report and "## Operating points" in report
