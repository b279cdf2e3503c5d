"""The interleaved ConvLSTM encoder-forecaster of Tran & Hogg (after Shi et al. 2015).

Pure PyTorch: no Lightning, no I/O. Layer names are the Caffe layer names of the authors' models, so that
``anomaly.model.caffe`` maps their ``.caffemodel`` files onto this network one to one.

Encoder (per input frame)::

    conv1 -> encode_lstm1 -> conv2 -> encode_lstm2 -> conv3 -> encode_lstm3
    227      55              27       27              13       13

Forecaster (per output step; each decode_lstm starts from the final state of the encode_lstm of its size)::

    decode_lstm1(0) -> deconv1 -> decode_lstm2 -> deconv2 -> decode_lstm3 -> deconv3 -> frame
    13                 27         27              55         55              227

The arithmetic is reordered for speed, never changed (``tests/test_convlstm.py`` checks it against the
equations written out step by step): the network runs level by level (a level's step depends only on the level
below at the same step and on its own previous step, so each level runs all its steps before the next, and the
convolutions between levels run on all steps at once); a cell computes its gates with one convolution over
``cat(x, h)``; a term whose factor is exactly zero (the encoder's zero initial state, decode_lstm1's zero input) is
not computed; deconv1 and deconv2 add their bias after the transposed convolution (:func:`conv_transpose_then_bias`);
and deconv3 (stride 4, 11x11, one output channel, a slow shape for oneDNN) runs as the equal sub-pixel convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anomaly.errors import ConfigError

State = tuple[Tensor, Tensor]

LEAKY_SLOPE = 0.2
FRAME_SIZE = 227  # the network takes grey 227x227 frames: its peephole maps are sized for them
INITS = ("authors", "paper")


def leaky_relu(x: Tensor) -> Tensor:
    """``F.leaky_relu(x, LEAKY_SLOPE)``; compiled for the CPU with gradients, ``x`` times a float slope map.

    Both forms give the same values and gradients, bit for bit, in float32 and bfloat16 (x * 1 and x * 0.2 where
    x > 0 and x <= 0, computed in float32; the gradient likewise). The difference is what the backward keeps: for
    ``F.leaky_relu``, inductor saves a bool mask ``x > 0``, and its C++ backend stores bool tensors at about 7 ns an
    element, over 30 times a float store. That cost about 20 ms of a 205 ms compiled training step (the 2-core
    Xeon, batch 4); the float map costs under 1 ms.
    """
    if not (torch.compiler.is_compiling() and x.device.type == "cpu" and x.requires_grad):
        return F.leaky_relu(x, LEAKY_SLOPE)
    wide = x.float()  # in float32 for bf16 too, as F.leaky_relu computes
    slope = LEAKY_SLOPE + (1 - LEAKY_SLOPE) * torch.sign(wide).clamp_min(0)  # exactly 1 or LEAKY_SLOPE, no bool
    return (wide * slope.detach()).to(x.dtype)


class ConvLSTMCell(nn.Module):
    r"""ConvLSTM cell with (H, W) peephole maps on :math:`c_{t-1}` (the authors' Caffe variant).

    .. math::
        z &= W_x * x_t + W_h * h_{t-1} + b \\
        i &= \sigma(z_i + P_i \odot c_{t-1}) \qquad
        f  = \sigma(z_f + P_f \odot c_{t-1}) \qquad
        o  = \sigma(z_o + P_o \odot c_{t-1}) \\
        g &= \tanh(z_g) \\
        c_t &= f \odot c_{t-1} + i \odot g \qquad h_t = o \odot \tanh(c_t)

    ``*`` is a 3x3 convolution (padding 1). The 4C pre-activation channels are ordered i, f, o, g. Each
    peephole map has shape (H, W) and is shared by all C channels; the output gate also looks at
    :math:`c_{t-1}` (not :math:`c_t`), as in the authors' code.

    Args:
        in_channels: Cin, channels of :math:`x_t`.
        channels: C, channels of :math:`h_t` and :math:`c_t`.
        size: (H, W) of the maps, fixed because the peepholes are per pixel.

    Parameters: ``4C*Cin*9`` (``input_conv.weight``, no bias) + ``4C*C*9 + 4C`` (``hidden_conv`` weight and
    bias) + ``3*H*W`` (``peephole``). The two convolutions are kept as modules for their names (checkpoints,
    the Caffe import); the forward pass uses their weights concatenated.
    """

    def __init__(self, in_channels: int, channels: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.channels = channels
        self.size = tuple(size)
        self.input_conv = nn.Conv2d(in_channels, 4 * channels, 3, padding=1, bias=False)
        self.hidden_conv = nn.Conv2d(channels, 4 * channels, 3, padding=1, bias=True)
        self.peephole = nn.Parameter(torch.ones(3, *self.size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weights N(0, 0.01) and bias 0 (the paper and the authors' files agree); peepholes 1 (their code)."""
        nn.init.normal_(self.input_conv.weight, std=0.01)
        nn.init.normal_(self.hidden_conv.weight, std=0.01)
        nn.init.zeros_(self.hidden_conv.bias)
        nn.init.ones_(self.peephole)

    def preactivations(self, x: Tensor | None, state: State | None) -> Tensor:
        """z = W_x * x + W_h * h + b, (B, 4C, H, W): one convolution over ``cat(x, h)``, or over the one that is not
        None (an exact zero, whose term is skipped)."""
        if x is None and state is None:
            raise ValueError("a ConvLSTM step needs an input or a state")
        w_x, w_h, bias = self.input_conv.weight, self.hidden_conv.weight, self.hidden_conv.bias
        if state is None:
            return F.conv2d(x, w_x, bias, padding=1)
        if x is None:
            return F.conv2d(state[0], w_h, bias, padding=1)
        return F.conv2d(torch.cat((x, state[0]), 1), torch.cat((w_x, w_h), 1), bias, padding=1)

    def forward(self, x: Tensor | None, state: State | None) -> State:
        """One step. ``x`` (B, Cin, H, W), or None for an all-zero input; ``state`` None for zeros.

        A None stands for exact zeros, so the terms it would multiply are skipped, not computed.
        """
        z_i, z_f, z_o, z_g = self.preactivations(x, state).chunk(4, dim=1)
        g = torch.tanh(z_g)
        if state is None:  # c_{t-1} = 0: no peephole terms, no forget term
            c = torch.sigmoid(z_i) * g
            o = torch.sigmoid(z_o)
        else:
            c_prev = state[1]
            p_i, p_f, p_o = self.peephole
            i = torch.sigmoid(z_i + p_i * c_prev)
            f = torch.sigmoid(z_f + p_f * c_prev)
            o = torch.sigmoid(z_o + p_o * c_prev)
            c = f * c_prev + i * g
        return o * torch.tanh(c), c


def conv_transpose_then_bias(layer: nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """``layer(x)``, with the bias added after the transposed convolution instead of inside it.

    The same values bit for bit in float32 (oneDNN adds the bias after the sums; ``tests/test_convlstm.py``), but
    on the CPU oneDNN's transposed convolution with a bias runs 2-3 times slower at deconv1's and deconv2's shapes
    (2026-12-06, 2-core Zen 4 EPYC, channels-last, compiled with the leaky ReLU after it: 1.27 against 0.46 ms
    forward for deconv1 at batch 8), and the added bias fuses into the leaky ReLU's kernel when compiled.
    """
    out = F.conv_transpose2d(x, layer.weight, None, layer.stride, layer.padding, layer.output_padding)
    return out + layer.bias[:, None, None]


def subpixel_conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride)`` (no padding) computed as a stride-1 convolution.

    Output pixel ``y = q*s + r`` sums ``x[q - j] * w[j*s + r]`` over j: for each phase r this is a
    correlation with a ceil(k/s)-tap kernel, so all s*s phases are one convolution with s*s*Cout output
    channels, interleaved by ``pixel_shuffle`` and cropped to ``(H - 1)*s + k``. The same sums as the
    transposed convolution, in another order.
    """
    cin, cout, k, _ = weight.shape
    taps = math.ceil(k / stride)
    padded = F.pad(weight, (0, taps * stride - k, 0, taps * stride - k))
    phases = padded.view(cin, cout, taps, stride, taps, stride).flip(2, 4)
    kernel = phases.permute(1, 3, 5, 0, 2, 4).reshape(cout * stride * stride, cin, taps, taps)
    bias = None if bias is None else bias.repeat_interleave(stride * stride)
    out = F.pixel_shuffle(F.conv2d(x, kernel, bias, padding=taps - 1), stride)
    size_h, size_w = (x.shape[-2] - 1) * stride + k, (x.shape[-1] - 1) * stride + k
    return out[..., :size_h, :size_w]


class EncoderForecaster(nn.Module):
    """Interleaved ConvLSTM encoder-forecaster for 1x227x227 frames (848,691 parameters, any tau).

    Input (B, T, 1, 227, 227) in [0, 1]; output (B, tau_out, 1, 227, 227): the next frames (prediction)
    or the input in reverse order (reconstruction), depending only on what it was trained against.

    Args:
        init: ``"authors"`` (their training files: Caffe's xavier filler for conv/deconv weights) or
            ``"paper"`` (the paper's text: He's Gaussian). Either way conv/deconv biases start at 0 and the
            cells as in :meth:`ConvLSTMCell.reset_parameters`.

    Attributes:
        subpixel: run deconv3 as the equal sub-pixel convolution (the default: faster, but about 1.3 times the
            multiply-adds, padded phases included). ``False`` runs the transposed convolution itself: the
            model's own arithmetic, which ``anomaly.bench`` counts.
    """

    subpixel = True

    def __init__(self, init: str = "authors") -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"model.init={init!r}: expected one of {INITS}")
        self.init = init
        self.conv1 = nn.Conv2d(1, 16, 11, stride=4)
        self.encode_lstm1 = ConvLSTMCell(16, 16, (55, 55))
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2)
        self.encode_lstm2 = ConvLSTMCell(32, 32, (27, 27))
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2)
        self.encode_lstm3 = ConvLSTMCell(64, 64, (13, 13))
        self.decode_lstm1 = ConvLSTMCell(64, 64, (13, 13))
        self.deconv1 = nn.ConvTranspose2d(64, 32, 3, stride=2)
        self.decode_lstm2 = ConvLSTMCell(32, 32, (27, 27))
        self.deconv2 = nn.ConvTranspose2d(32, 16, 3, stride=2)
        self.decode_lstm3 = ConvLSTMCell(16, 16, (55, 55))
        self.deconv3 = nn.ConvTranspose2d(16, 1, 11, stride=4)
        self.reset_parameters()
        # decode_lstm1's input is all zeros, so its input weights never touch the output and get no gradient.
        # They stay parameters (the count and the Caffe import are exact) but are frozen, so that optimisers
        # and DDP (which rejects parameters without gradients) leave them alone.
        self.decode_lstm1.input_conv.weight.requires_grad_(False)

    @property
    def layers(self) -> tuple[nn.Conv2d | nn.ConvTranspose2d, ...]:
        """The six conv/deconv layers (the ones outside the cells)."""
        return (self.conv1, self.conv2, self.conv3, self.deconv1, self.deconv2, self.deconv3)

    def reset_parameters(self) -> None:
        """Conv/deconv weights per ``init``, biases 0; the cells reset themselves.

        Caffe's xavier filler draws from U(-a, a), a = sqrt(3 / n) with n = the blob's element count over its
        first dimension: Cin*k*k for a Convolution blob (out, in, k, k), Cout*k*k for a Deconvolution blob
        (in, out, k, k), which is also PyTorch's ConvTranspose2d layout.
        """
        for layer in self.layers:
            weight = layer.weight
            if self.init == "authors":
                bound = math.sqrt(3 * weight.shape[0] / weight.numel())
                nn.init.uniform_(weight, -bound, bound)
            else:
                nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, frames: Tensor, tau_out: int | None = None) -> Tensor:
        if frames.ndim != 5 or frames.shape[2:] != (1, FRAME_SIZE, FRAME_SIZE):
            raise ValueError(
                f"expected frames of shape (B, T, 1, {FRAME_SIZE}, {FRAME_SIZE}), got {tuple(frames.shape)}"
            )
        batch, steps = frames.shape[:2]
        tau_out = steps if tau_out is None else tau_out
        # Level by level, time-major (T, B, ...): a step's maps are one contiguous block.
        x1 = _between(self.conv1, frames.transpose(0, 1))
        h1, s1 = _unroll(self.encode_lstm1, x1, None, steps)  # the encoder starts from zero states
        h2, s2 = _unroll(self.encode_lstm2, _between(self.conv2, h1), None, steps)
        _, s3 = _unroll(self.encode_lstm3, _between(self.conv3, h2), None, steps)
        # The forecaster continues from the encoder's final states, level by level.
        d1, _ = _unroll(self.decode_lstm1, None, s3, tau_out)
        d2, _ = _unroll(self.decode_lstm2, _between(partial(conv_transpose_then_bias, self.deconv1), d1), s2, tau_out)
        d3, _ = _unroll(self.decode_lstm3, _between(partial(conv_transpose_then_bias, self.deconv2), d2), s1, tau_out)
        top = d3.flatten(0, 1)
        if self.subpixel:
            out = subpixel_conv_transpose2d(top, self.deconv3.weight, self.deconv3.bias, self.deconv3.stride[0])
        else:
            out = self.deconv3(top)
        return out.unflatten(0, (tau_out, batch)).transpose(0, 1)


def _unroll(cell: ConvLSTMCell, inputs: Tensor | None, state: State | None, steps: int) -> tuple[Tensor, State]:
    """``steps`` steps of ``cell`` from ``state`` over time-major ``inputs`` (T, B, C, H, W), None for all-zero
    inputs: every step's h, stacked time-major, and the last state."""
    hs = []
    for t in range(steps):
        state = cell(None if inputs is None else inputs[t], state)
        hs.append(state[0])
    return torch.stack(hs), state


def _between(layer: Callable[[Tensor], Tensor], maps: Tensor) -> Tensor:
    """``layer`` and the leaky ReLU after it on every step of time-major ``maps`` (T, B, C, H, W) at once."""
    return leaky_relu(layer(maps.flatten(0, 1))).unflatten(0, maps.shape[:2])


def compile_options(mode: str | None = None, device: torch.device | str = "cpu") -> dict:
    """``torch.compile`` options for ``mode`` (torch's modes) on ``device``; on the CPU with inductor's C++ wrapper.

    ``cpp_wrapper`` calls the graph's kernels and convolutions from generated C++ instead of Python: a compiled
    fp32 training step about 2 % faster on a 2-core Zen 4 EPYC (docs/benchmarks.md), for a compile about as long.
    ``mode`` is given as the options it stands for, since ``torch.compile`` takes a mode or options, not both.

    Not ``cpp.use_decompose_tanh`` (``2 / (1 + exp(-2x)) - 1``, 1-2 % faster than Sleef's tanh): its relative error
    reaches 170 % for inputs below about 1e-4, the deep cells' states at the authors' initialisation, and put the
    compiled gradients of the deep layers up to 9e-3 off (``tests/test_module.py``; docs/benchmarks.md).
    """
    options = torch._inductor.list_mode_options(mode or "default")
    if torch.device(device).type == "cpu":
        options["cpp_wrapper"] = True
    return options


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
