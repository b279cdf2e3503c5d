"""The authors' .caffemodel format (REFERENCE.md section 2): exact round trip, file layout, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.datasets import MODELS

from anomaly.errors import AnomalyError, WeightsError
from anomaly.model.caffe import (
    CaffeModelError,
    _encode_blob,
    _encode_varint,
    _fields,
    _key,
    _length_delimited,
    load_caffemodel,
    read_caffemodel,
    write_caffemodel,
)
from anomaly.model.convlstm import EncoderForecaster, count_parameters

NET_LAYER = 100  # NetParameter.layer


def lstm_blobs(cin: int, c: int, size: int) -> list[tuple[int, ...]]:
    wx, wh, bias, peephole = (4 * c, cin, 3, 3), (4 * c, c, 3, 3), (4 * c,), (size, size)
    return [wx, (1,), (1,), wh, bias, peephole, peephole, peephole, (1,), (1,)]


# Layers carrying blobs, in file order, with their blob shapes (REFERENCE.md section 2).
CAFFE_LAYOUT = {
    "conv1": [(16, 1, 11, 11), (16,)],
    "encode_lstm1": lstm_blobs(16, 16, 55),
    "conv2": [(32, 16, 3, 3), (32,)],
    "encode_lstm2": lstm_blobs(32, 32, 27),
    "conv3": [(64, 32, 3, 3), (64,)],
    "encode_lstm3": lstm_blobs(64, 64, 13),
    "decode_lstm1": lstm_blobs(64, 64, 13),
    "deconv1": [(64, 32, 3, 3), (32,)],
    "decode_lstm2": lstm_blobs(32, 32, 27),
    "deconv2": [(32, 16, 3, 3), (16,)],
    "decode_lstm3": lstm_blobs(16, 16, 55),
    "deconv3": [(16, 1, 11, 11), (1,)],
}


def random_network(seed: int) -> EncoderForecaster:
    torch.manual_seed(seed)
    net = EncoderForecaster()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_()  # every value distinct from the initialisation, peepholes included
    return net


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[EncoderForecaster, Path]:
    """A random network and the caffemodel written from it."""
    net = random_network(seed=0)
    path = tmp_path_factory.mktemp("caffe") / "random.caffemodel"
    write_caffemodel(net, path)
    return net, path


def layers_of(path: Path) -> list[tuple[str, bytes]]:
    """(name, serialised LayerParameter) of each layer of a caffemodel, read with the module's wire reader."""
    layers = []
    for field, _, value in _fields(path.read_bytes()):
        assert field == NET_LAYER
        name = next(bytes(v).decode() for f, _, v in _fields(value) if f == 1)
        layers.append((name, bytes(value)))
    return layers


def write_layers(path: Path, layers: list[tuple[str, bytes]]) -> Path:
    path.write_bytes(b"".join(_length_delimited(NET_LAYER, layer) for _, layer in layers))
    return path


def layer_bytes(name: str, blobs: list[bytes], kind: str = "Convolution") -> bytes:
    return (
        _length_delimited(1, name.encode())
        + _length_delimited(2, kind.encode())
        + b"".join(_length_delimited(7, blob) for blob in blobs)
    )


def replaced(path: Path, written_path: Path, name: str, layer: bytes) -> Path:
    layers = [(n, layer if n == name else value) for n, value in layers_of(written_path)]
    return write_layers(path, layers)


def load_error(path: Path) -> str:
    with pytest.raises(CaffeModelError) as info:
        load_caffemodel(EncoderForecaster(), path)
    message = str(info.value)
    assert str(path) in message, "the message names the file"
    return message


# --- round trip and layout -------------------------------------------------------------------------------


def test_round_trip_is_exact(written: tuple[EncoderForecaster, Path]) -> None:
    net, path = written
    fresh = load_caffemodel(EncoderForecaster(), path)
    loaded = dict(fresh.named_parameters())
    for name, parameter in net.named_parameters():
        assert torch.equal(loaded[name], parameter), name


def test_layer_names_and_blob_shapes_are_the_authors(written: tuple[EncoderForecaster, Path]) -> None:
    layers = read_caffemodel(written[1])
    assert list(layers) == list(CAFFE_LAYOUT)  # file order
    for name, shapes in CAFFE_LAYOUT.items():
        assert [blob.shape for blob in layers[name]] == shapes, name


def test_stored_values_are_parameters_plus_placeholders(written: tuple[EncoderForecaster, Path]) -> None:
    layers = read_caffemodel(written[1])
    assert sum(blob.size for blobs in layers.values() for blob in blobs) == 848_715
    assert 848_715 - count_parameters(written[0]) == 24


def test_placeholders_are_written_as_zero(written: tuple[EncoderForecaster, Path]) -> None:
    layers = read_caffemodel(written[1])
    for name in (
        "encode_lstm1",
        "encode_lstm2",
        "encode_lstm3",
        "decode_lstm1",
        "decode_lstm2",
        "decode_lstm3",
    ):
        assert [layers[name][i].tolist() for i in (1, 2, 8, 9)] == [[0.0]] * 4, name


def test_peephole_blobs_are_i_f_o_in_order(written: tuple[EncoderForecaster, Path]) -> None:
    net, path = written
    blobs = read_caffemodel(path)["encode_lstm2"]
    for index, gate in ((5, 0), (6, 1), (7, 2)):
        assert np.array_equal(blobs[index], net.encode_lstm2.peephole[gate].detach().numpy())


def test_layer_types_are_written(written: tuple[EncoderForecaster, Path]) -> None:
    kinds = {}
    for name, layer in layers_of(written[1]):
        kinds[name] = next(bytes(v).decode() for f, _, v in _fields(layer) if f == 2)
    assert kinds["conv1"] == "Convolution"
    assert kinds["deconv3"] == "Deconvolution"
    assert kinds["decode_lstm2"] == "ConvLSTM"


def test_old_style_blob_dimensions_are_read(tmp_path: Path) -> None:
    """Old Caffe blobs carry num, channels, height, width as fields 1-4 instead of a shape."""
    values = np.arange(2 * 3 * 4 * 5, dtype="<f4")
    dims = b"".join(_key(field, 0) + _encode_varint(size) for field, size in ((1, 2), (2, 3), (3, 4), (4, 5)))
    blob = dims + _length_delimited(5, values.tobytes())
    path = write_layers(tmp_path / "old.caffemodel", [("conv1", layer_bytes("conv1", [blob]))])
    (array,) = read_caffemodel(path)["conv1"]
    assert array.shape == (2, 3, 4, 5)
    assert np.array_equal(array.ravel(), values)


def test_writing_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_caffemodel(EncoderForecaster(), tmp_path / "model.caffemodel")
    assert [p.name for p in tmp_path.iterdir()] == ["model.caffemodel"]


# --- errors: CaffeModelError naming the file and what is wrong -------------------------------------------


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.caffemodel"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    message = load_error(path)
    assert "not a valid caffemodel" in message or "no Caffe layers" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.caffemodel"
    path.write_bytes(b"")
    assert "no Caffe layers with weights found" in load_error(path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "deploy.prototxt"
    path.write_text('name: "convLSTM"\nlayer { name: "conv1" type: "Convolution" }\n')
    message = load_error(path)
    assert "not a valid caffemodel" in message or "no Caffe layers" in message


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file(written: tuple[EncoderForecaster, Path], tmp_path: Path, keep: float) -> None:
    data = written[1].read_bytes()
    path = tmp_path / "truncated.caffemodel"
    path.write_bytes(data[: int(len(data) * keep)])
    message = load_error(path)
    assert "not a valid caffemodel protobuf" in message
    assert "truncated" in message


def test_nonexistent_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.caffemodel"
    assert "cannot read" in load_error(path)


def test_folder_instead_of_a_file(tmp_path: Path) -> None:
    assert "cannot read" in load_error(tmp_path)


def test_missing_layer(written: tuple[EncoderForecaster, Path], tmp_path: Path) -> None:
    layers = [(name, layer) for name, layer in layers_of(written[1]) if name != "deconv2"]
    message = load_error(write_layers(tmp_path / "no_deconv2.caffemodel", layers))
    assert "missing layer(s) ['deconv2']" in message


def test_model_of_another_network(tmp_path: Path) -> None:
    blobs = [_encode_blob(np.zeros((8, 3, 5, 5), np.float32)), _encode_blob(np.zeros(8, np.float32))]
    path = write_layers(tmp_path / "other.caffemodel", [("fc6", layer_bytes("fc6", blobs))])
    message = load_error(path)
    assert "missing layer(s)" in message
    assert "'fc6'" in message  # what was found instead


def test_wrong_blob_shape(written: tuple[EncoderForecaster, Path], tmp_path: Path) -> None:
    blobs = [_encode_blob(np.zeros((16, 1, 9, 9), np.float32)), _encode_blob(np.zeros(16, np.float32))]
    path = replaced(tmp_path / "conv1_9x9.caffemodel", written[1], "conv1", layer_bytes("conv1", blobs))
    message = load_error(path)
    assert "layer 'conv1' blob 0 has shape (16, 1, 9, 9), expected (16, 1, 11, 11)" in message


def test_wrong_peephole_shape(written: tuple[EncoderForecaster, Path], tmp_path: Path) -> None:
    shapes = lstm_blobs(16, 16, 55)
    shapes[6] = (54, 55)
    blobs = [_encode_blob(np.zeros(shape, np.float32)) for shape in shapes]
    layer = layer_bytes("encode_lstm1", blobs, "ConvLSTM")
    message = load_error(replaced(tmp_path / "peephole.caffemodel", written[1], "encode_lstm1", layer))
    assert "layer 'encode_lstm1' blob 6 has shape (54, 55), expected (55, 55)" in message


def test_wrong_number_of_blobs(written: tuple[EncoderForecaster, Path], tmp_path: Path) -> None:
    blobs = [_encode_blob(np.zeros(shape, np.float32)) for shape in lstm_blobs(32, 32, 27)[:9]]
    layer = layer_bytes("decode_lstm2", blobs, "ConvLSTM")
    message = load_error(replaced(tmp_path / "nine_blobs.caffemodel", written[1], "decode_lstm2", layer))
    assert "layer 'decode_lstm2' has 9 blobs, expected 10" in message


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(_length_delimited(7, _length_delimited(1, b"\x02\x03")), id="shape-without-data"),
        pytest.param(
            _length_delimited(7, _length_delimited(1, b"\x04")) + _length_delimited(5, b"\x00" * 12),
            id="fewer-values-than-shape",
        ),
        pytest.param(_length_delimited(5, b"\x00" * 7), id="data-not-whole-floats"),
        pytest.param(_length_delimited(8, b"\x00" * 12), id="double-data-not-whole-doubles"),
        pytest.param(_key(5, 0) + _encode_varint(3), id="data-as-varint"),
        pytest.param(_length_delimited(7, _key(1, 5) + b"\x01\x00\x00\x00"), id="dim-as-fixed32"),
        pytest.param(
            _length_delimited(7, _length_delimited(1, _encode_varint(0) + _encode_varint(2**64 - 1))),
            id="absurd-dims",
        ),
        pytest.param(_key(5, 3), id="unsupported-wire-type"),
    ],
)
def test_malformed_blob(written: tuple[EncoderForecaster, Path], tmp_path: Path, blob: bytes) -> None:
    """Any malformed blob is a CaffeModelError, never a raw numpy or reshape error."""
    path = replaced(tmp_path / "bad_blob.caffemodel", written[1], "conv2", layer_bytes("conv2", [blob, blob]))
    message = load_error(path)
    assert "conv2" in message or "not a valid caffemodel" in message


def test_caffe_model_error_is_a_weights_error_shown_as_a_message() -> None:
    assert issubclass(CaffeModelError, WeightsError) and issubclass(WeightsError, AnomalyError)


# --- the authors' model, when ../shared is present -------------------------------------------------------


@pytest.mark.skipif(not (MODELS / "ped2_aug2.caffemodel").is_file(), reason="no ../shared/models")
def test_authors_ped2_model_loads() -> None:
    path = MODELS / "ped2_aug2.caffemodel"
    layers = read_caffemodel(path)
    assert list(layers) == list(CAFFE_LAYOUT)
    assert sum(blob.size for blobs in layers.values() for blob in blobs) == 848_715
    net = load_caffemodel(EncoderForecaster(), path)
    for name, parameter in net.named_parameters():
        assert torch.isfinite(parameter).all(), name
    assert torch.equal(net.conv1.weight, torch.from_numpy(layers["conv1"][0].copy()))
    assert torch.equal(net.decode_lstm3.peephole[2], torch.from_numpy(layers["decode_lstm3"][7].copy()))
    assert not torch.equal(net.encode_lstm1.peephole, torch.ones_like(net.encode_lstm1.peephole)), "trained"
