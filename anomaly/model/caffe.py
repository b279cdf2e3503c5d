"""Read (and write) the authors' Caffe models (``.caffemodel``) for :class:`EncoderForecaster`.

A ``.caffemodel`` is a serialised Caffe ``NetParameter`` protobuf. Only a handful of fields matter, so
this module reads the protobuf wire format directly instead of compiling caffe.proto:

- ``NetParameter.layer`` = 100 (repeated ``LayerParameter``)
- ``LayerParameter.name`` = 1, ``.type`` = 2, ``.blobs`` = 7 (repeated ``BlobProto``)
- ``BlobProto.shape`` = 7 (``BlobShape.dim`` = 1, packed int64), ``.data`` = 5 (packed float32), or the
  old-style ``num/channels/height/width`` = 1..4

Each ConvLSTM layer carries 10 blobs: ``Wx, (1), (1), Wh, b, P_i, P_f, P_o, (1), (1)``; the four
1-element blobs are placeholders of the authors' Caffe fork and carry nothing. Caffe's Deconvolution
weight layout (in, out, kh, kw) is PyTorch's ConvTranspose2d layout, so no blob is transposed.

Example:
    >>> model = EncoderForecaster()
    >>> load_caffemodel(model, "ped2_aug2.caffemodel")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anomaly.atomic import atomic_path
from anomaly.errors import WeightsError
from anomaly.model.convlstm import ConvLSTMCell, EncoderForecaster

NET_LAYER, LAYER_NAME, LAYER_TYPE, LAYER_BLOBS = 100, 1, 2, 7
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH, BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = (
    1,
    2,
    3,
    4,
    5,
    7,
    8,
)
SHAPE_DIM = 1
PLACEHOLDER_BLOBS = (1, 2, 8, 9)  # positions of the (1)-shaped blobs of a ConvLSTM layer


class CaffeModelError(WeightsError):
    """The file is not a caffemodel of this network; the message says what is wrong and where."""


# --- protobuf wire format ------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CaffeModelError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffeModelError("malformed varint")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of one message: ints for scalars, bytes for the rest."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise CaffeModelError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise CaffeModelError(f"unsupported protobuf wire type {wire} (field {field})")
        if pos > len(buf):
            raise CaffeModelError(f"truncated field {field}")
        yield field, wire, value


def _key(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _encode_varint(len(payload)) + payload


# --- blobs and layers ----------------------------------------------------------------------------------


def _parse_blob(buf: bytes) -> np.ndarray:
    dims: list[int] = []
    legacy: dict[int, int] = {}
    chunks: list[np.ndarray] = []
    for field, wire, value in _fields(buf):
        if field == BLOB_SHAPE and wire == 2:
            for sub_field, sub_wire, dim in _fields(value):
                if sub_field != SHAPE_DIM:
                    continue
                if sub_wire == 2:  # packed
                    pos = 0
                    while pos < len(dim):
                        d, pos = _varint(dim, pos)
                        dims.append(d)
                elif sub_wire == 0:
                    dims.append(int(dim))
        elif field in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire == 0:
            legacy[field] = int(value)
        elif field == BLOB_DATA and wire in (2, 5):  # packed, or one unpacked float
            chunks.append(_floats(value, "<f4"))
        elif field == BLOB_DOUBLE_DATA and wire in (1, 2):
            chunks.append(_floats(value, "<f8").astype(np.float32))
    if not dims and legacy:
        dims = [legacy.get(f, 1) for f in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH)]
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if math.prod(dims) != data.size:
        raise CaffeModelError(f"blob of shape {tuple(dims)} holds {data.size} values")
    try:
        return data.reshape(dims)
    except (ValueError, OverflowError) as err:  # e.g. a zero dim next to one beyond the address space
        raise CaffeModelError(f"blob of shape {tuple(dims)}: {err}") from None


def _floats(value: bytes, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if len(value) % size:
        raise CaffeModelError(f"blob data of {len(value)} bytes is not a whole number of {size}-byte floats")
    return np.frombuffer(value, dtype=dtype)


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Return ``{layer name: [blob arrays]}`` for every layer of the file that carries blobs, in order."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as err:
        raise CaffeModelError(f"{path}: cannot read ({err.strerror})") from err
    layers: dict[str, list[np.ndarray]] = {}
    try:
        for field, wire, value in _fields(buf):
            if field != NET_LAYER or wire != 2:
                continue
            name, blobs = None, []
            for sub_field, sub_wire, sub_value in _fields(value):
                if sub_field == LAYER_NAME and sub_wire == 2:
                    name = bytes(sub_value).decode("utf-8", errors="replace")
                elif sub_field == LAYER_BLOBS and sub_wire == 2:
                    blobs.append(_parse_blob(sub_value))
            if name is not None and blobs:
                layers[name] = blobs
    except CaffeModelError as err:
        raise CaffeModelError(f"{path}: not a valid caffemodel protobuf: {err}") from None
    if not layers:
        raise CaffeModelError(
            f"{path}: no Caffe layers with weights found; expected a .caffemodel (NetParameter with "
            f"'layer' entries, field 100) of the ConvLSTM encoder-forecaster"
        )
    return layers


def _expected_blobs(module: nn.Module) -> list[torch.Tensor]:
    """The network's tensors in the order of the Caffe blobs of the layer (placeholders as None)."""
    if isinstance(module, ConvLSTMCell):
        blobs = [module.input_conv.weight, None, None, module.hidden_conv.weight, module.hidden_conv.bias]
        return blobs + [module.peephole[0], module.peephole[1], module.peephole[2], None, None]
    return [module.weight, module.bias]


def caffe_layers(model: EncoderForecaster) -> dict[str, nn.Module]:
    """Caffe layer name -> submodule, for every layer that carries weights, in file order."""
    return {name: module for name, module in model.named_children() if not isinstance(module, nn.LeakyReLU)}


def load_caffemodel(model: EncoderForecaster, path: str | os.PathLike) -> EncoderForecaster:
    """Copy the weights of a ``.caffemodel`` into ``model``, checking every layer name and blob shape."""
    layers = read_caffemodel(path)
    expected = caffe_layers(model)
    missing = [name for name in expected if name not in layers]
    if missing:
        raise CaffeModelError(
            f"{path}: missing layer(s) {missing}; found {list(layers)}. "
            f"Is this a model of the ConvLSTM encoder-forecaster (layers {list(expected)})?"
        )
    with torch.no_grad():
        for name, module in expected.items():
            blobs, targets = layers[name], _expected_blobs(module)
            if len(blobs) != len(targets):
                raise CaffeModelError(f"{path}: layer {name!r} has {len(blobs)} blobs, expected {len(targets)}")
            for index, (blob, target) in enumerate(zip(blobs, targets, strict=True)):
                want = (1,) if target is None else tuple(target.shape)
                if blob.shape != want:
                    raise CaffeModelError(
                        f"{path}: layer {name!r} blob {index} has shape {blob.shape}, expected {want}"
                    )
                if target is not None:
                    target.copy_(torch.from_numpy(blob.copy()))
    return model


def _encode_blob(array: np.ndarray) -> bytes:
    dims = b"".join(_encode_varint(d) for d in array.shape)
    shape = _length_delimited(SHAPE_DIM, dims)
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return _length_delimited(BLOB_SHAPE, shape) + _length_delimited(BLOB_DATA, data)


def write_caffemodel(model: EncoderForecaster, path: str | os.PathLike) -> None:
    """Write ``model`` as a caffemodel in the authors' layout (names, blob order, placeholders = 0)."""
    out = bytearray()
    for name, module in caffe_layers(model).items():
        kind = {nn.Conv2d: "Convolution", nn.ConvTranspose2d: "Deconvolution"}.get(type(module), "ConvLSTM")
        layer = _length_delimited(LAYER_NAME, name.encode()) + _length_delimited(LAYER_TYPE, kind.encode())
        for tensor in _expected_blobs(module):
            array = np.zeros(1, np.float32) if tensor is None else tensor.detach().cpu().numpy()
            layer += _length_delimited(LAYER_BLOBS, _encode_blob(array))
        out += _length_delimited(NET_LAYER, layer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(out))
