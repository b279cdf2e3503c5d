"""The network of REFERENCE.md section 1: its size, its shapes, the cell's equations and the state routing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anomaly.errors import ConfigError
from anomaly.model.convlstm import (
    ConvLSTMCell,
    EncoderForecaster,
    compile_options,
    conv_transpose_then_bias,
    count_parameters,
    leaky_relu,
    subpixel_conv_transpose2d,
)

ENCODER = ("conv1", "encode_lstm1", "conv2", "encode_lstm2", "conv3", "encode_lstm3")
FORECASTER = ("decode_lstm1", "deconv1", "decode_lstm2", "deconv2", "decode_lstm3", "deconv3")
# (name, Cin, C, H=W) of the six ConvLSTM layers, from the table of REFERENCE.md section 1.
CELLS = (
    ("encode_lstm1", 16, 16, 55),
    ("encode_lstm2", 32, 32, 27),
    ("encode_lstm3", 64, 64, 13),
    ("decode_lstm1", 64, 64, 13),
    ("decode_lstm2", 32, 32, 27),
    ("decode_lstm3", 16, 16, 55),
)


@pytest.fixture(scope="module")
def model() -> EncoderForecaster:
    torch.manual_seed(0)
    return EncoderForecaster().eval()


def frames(batch: int, steps: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, steps, 1, 227, 227, generator=torch.Generator().manual_seed(seed))


# --- size ------------------------------------------------------------------------------------------------


def test_parameter_count_is_the_papers(model: EncoderForecaster) -> None:
    assert count_parameters(model) == 848_691


def test_encoder_and_forecaster_parameter_counts(model: EncoderForecaster) -> None:
    encoder = sum(count_parameters(getattr(model, name)) for name in ENCODER)
    forecaster = sum(count_parameters(getattr(model, name)) for name in FORECASTER)
    assert encoder == 424_377
    assert forecaster == 424_314
    assert encoder + forecaster == count_parameters(model)


@pytest.mark.parametrize(("name", "cin", "c", "size"), CELLS)
def test_convlstm_parameter_formula(model: EncoderForecaster, name: str, cin: int, c: int, size: int) -> None:
    cell = getattr(model, name)
    assert count_parameters(cell) == 4 * c * cin * 9 + 4 * c * c * 9 + 4 * c + 3 * size * size


@pytest.mark.parametrize(("name", "cin", "c", "size"), CELLS)
def test_convlstm_parameter_shapes(model: EncoderForecaster, name: str, cin: int, c: int, size: int) -> None:
    cell = getattr(model, name)
    assert cell.input_conv.weight.shape == (4 * c, cin, 3, 3)
    assert cell.input_conv.bias is None  # Wx has no bias; b belongs to Wh
    assert cell.hidden_conv.weight.shape == (4 * c, c, 3, 3)
    assert cell.hidden_conv.bias.shape == (4 * c,)
    assert cell.peephole.shape == (3, size, size)


def test_initialisation_follows_the_authors_training_files_by_default() -> None:
    """Caffe xavier: U(-a, a), a = sqrt(3 / n), n = Cin*k*k for Convolution, Cout*k*k for Deconvolution blobs."""
    torch.manual_seed(0)
    net = EncoderForecaster()
    for name, *_ in CELLS:
        cell = getattr(net, name)
        assert torch.equal(cell.peephole, torch.ones_like(cell.peephole))
        assert torch.equal(cell.hidden_conv.bias, torch.zeros_like(cell.hidden_conv.bias))
    assert net.encode_lstm3.hidden_conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
    for name in ("conv1", "conv2", "conv3", "deconv1", "deconv2", "deconv3"):
        assert torch.equal(getattr(net, name).bias, torch.zeros_like(getattr(net, name).bias))
    for name, n in (("conv1", 1 * 121), ("conv2", 16 * 9), ("deconv1", 32 * 9), ("deconv3", 1 * 121)):
        weight, bound = getattr(net, name).weight, (3 / n) ** 0.5
        assert weight.abs().max().item() <= bound
        assert weight.abs().max().item() > 0.9 * bound  # uniform up to the bound, not a narrower Gaussian
        assert weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.15)  # std of U(-a, a) is a / sqrt(3)


def test_papers_he_initialisation_as_an_option() -> None:
    torch.manual_seed(0)
    net = EncoderForecaster(init="paper")
    # He's std for rectifiers, sqrt(2 / fan_in), fan_in = 16 * 3 * 3 for conv2 (4608 weights).
    assert net.conv2.weight.std().item() == pytest.approx((2 / 144) ** 0.5, rel=0.05)
    assert net.conv2.weight.abs().max().item() > (3 / 144) ** 0.5  # a Gaussian's tail, beyond xavier's bound


def test_unknown_initialisation_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model.init='glorot'"):
        EncoderForecaster(init="glorot")


# --- the fast network against the equations written out step by step ------------------------------------


def reference_forward(net: EncoderForecaster, x: torch.Tensor, tau_out: int) -> torch.Tensor:
    """The network as REFERENCE.md section 1 reads: two convolutions per cell, zero states and inputs
    computed, every deconv as a transposed convolution, one step after the other."""
    act = torch.nn.LeakyReLU(0.2)

    def cell(layer, inp, h, c):
        return cell_equations(layer, inp, h, c)

    def zeros(layer):
        z = torch.zeros(x.shape[0], layer.channels, *layer.size, dtype=x.dtype)
        return z, z.clone()

    s1, s2, s3 = zeros(net.encode_lstm1), zeros(net.encode_lstm2), zeros(net.encode_lstm3)
    for t in range(x.shape[1]):
        s1 = cell(net.encode_lstm1, act(net.conv1(x[:, t])), *s1)
        s2 = cell(net.encode_lstm2, act(net.conv2(s1[0])), *s2)
        s3 = cell(net.encode_lstm3, act(net.conv3(s2[0])), *s3)
    d1, d2, d3, out = s3, s2, s1, []
    for _ in range(tau_out):
        d1 = cell(net.decode_lstm1, torch.zeros_like(d1[0]), *d1)
        d2 = cell(net.decode_lstm2, act(net.deconv1(d1[0])), *d2)
        d3 = cell(net.decode_lstm3, act(net.deconv2(d2[0])), *d3)
        out.append(F.conv_transpose2d(d3[0], net.deconv3.weight, net.deconv3.bias, stride=4))
    return torch.stack(out, 1)


def randomised(net: EncoderForecaster) -> EncoderForecaster:
    """Every parameter random (biases and peepholes too), so that no term can hide behind a zero or a one."""
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.2)
    return net


@pytest.mark.parametrize("subpixel", [True, False])
def test_fast_network_equals_the_reference_maths_on_random_weights(subpixel: bool) -> None:
    torch.manual_seed(3)
    net = randomised(EncoderForecaster().double())
    net.subpixel = subpixel  # False: deconv3 as the transposed convolution, what anomaly.bench counts
    x = frames(2, 3).double().requires_grad_()
    fast, ref = net(x, tau_out=2), reference_forward(net, x, 2)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-10)
    # and so do the gradients, of the input and of every parameter
    weights = torch.randn_like(ref)
    trained = [p for p in net.parameters() if p.requires_grad]
    fast_grads = torch.autograd.grad((fast * weights).sum(), [x, *trained])
    ref_grads = torch.autograd.grad((ref * weights).sum(), [x, *trained])
    for a, b in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_the_compiled_network_keeps_the_maths_in_outputs_and_gradients() -> None:
    """The network compiled with ``compile_options`` (inductor, with its C++ wrapper on the CPU) in float32 is as
    close to the float64 reference as the eager float32 network is (within a few roundings), in the output and in
    every parameter's gradient."""
    torch.manual_seed(4)
    exact = randomised(EncoderForecaster().double())
    x = frames(2, 2)
    ref = reference_forward(exact, x.double(), 1)
    weights = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * weights).sum(), [p for p in exact.parameters() if p.requires_grad])

    def errors(compiled: bool) -> tuple[float, float]:
        net = EncoderForecaster()
        net.load_state_dict(exact.state_dict())
        run = torch.compile(net, options=compile_options()) if compiled else net
        out = run(x, tau_out=1).double()
        grads = torch.autograd.grad((out * weights).sum(), [p for p in net.parameters() if p.requires_grad])
        pairs = zip(grads, ref_grads, strict=True)
        grad_error = max(((a.double() - b).abs().max() / b.abs().max()).item() for a, b in pairs)
        return (out - ref).abs().max().item(), grad_error

    eager, compiled = errors(False), errors(True)
    assert eager[0] < 5e-5 and eager[1] < 1e-4, eager
    assert compiled[0] <= 4 * eager[0] + 1e-6 and compiled[1] <= 4 * eager[1] + 1e-5, (eager, compiled)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_compiled_leaky_relu_is_torchs_bit_for_bit(dtype: torch.dtype) -> None:
    """The compiled form (x times a float slope map) equals ``F.leaky_relu`` exactly, in values and gradients, at 0
    and -0 included (where the slope is 0.2, as in Caffe's ReLU)."""
    x = torch.cat((torch.randn(5000, generator=torch.Generator().manual_seed(4)), torch.tensor([0.0, -0.0, 1e-30])))
    x = x.to(dtype)
    grad = torch.randn_like(x)

    def values_and_grads(function) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        leaf = x.clone().requires_grad_()
        out = function(leaf)
        return out, torch.autograd.grad(out, leaf, grad)[0]

    want = values_and_grads(lambda t: F.leaky_relu(t, 0.2))
    got = values_and_grads(torch.compile(leaky_relu))
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("name", ["deconv1", "deconv2"])
def test_bias_after_the_transposed_convolution_is_torchs_bit_for_bit(
    name: str, memory_format: torch.memory_format
) -> None:
    torch.manual_seed(5)
    layer = randomised(EncoderForecaster()).get_submodule(name)
    size = {"deconv1": 13, "deconv2": 27}[name]
    x = torch.randn(3, layer.in_channels, size, size).contiguous(memory_format=memory_format)
    assert torch.equal(conv_transpose_then_bias(layer, x), layer(x))


@pytest.mark.parametrize(("cin", "cout", "k", "stride", "size"), [(16, 1, 11, 4, 55), (4, 3, 3, 2, 6), (2, 2, 5, 3, 4)])
def test_subpixel_transposed_convolution_equals_torchs(cin: int, cout: int, k: int, stride: int, size: int) -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, cin, size, size + 1, generator=generator, dtype=torch.float64)
    weight = torch.randn(cin, cout, k, k, generator=generator, dtype=torch.float64)
    bias = torch.randn(cout, generator=generator, dtype=torch.float64)
    want = F.conv_transpose2d(x, weight, bias, stride=stride)
    torch.testing.assert_close(subpixel_conv_transpose2d(x, weight, bias, stride), want, rtol=0, atol=1e-11)


# --- shapes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "steps", "tau_out"), [(2, 2, None), (1, 5, None), (1, 2, 3), (1, 5, 1)])
def test_output_shape(model: EncoderForecaster, batch: int, steps: int, tau_out: int | None) -> None:
    with torch.no_grad():
        out = model(frames(batch, steps), tau_out)
    assert out.shape == (batch, steps if tau_out is None else tau_out, 1, 227, 227)


@pytest.mark.parametrize("shape", [(5, 1, 227, 227), (1, 5, 3, 227, 227), (1, 5, 1, 224, 224), (1, 5, 1, 227, 228)])
def test_bad_input_shape_is_a_value_error(model: EncoderForecaster, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expected frames of shape \(B, T, 1, 227, 227\)"):
        model(torch.zeros(shape))


# --- the cell against its equations ----------------------------------------------------------------------


def random_cell(cin: int = 2, c: int = 3, size: tuple[int, int] = (5, 6)) -> ConvLSTMCell:
    torch.manual_seed(0)
    cell = ConvLSTMCell(cin, c, size).double()
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.normal_()  # peepholes too: the default ones would hide a mix-up of P_i, P_f, P_o
    return cell


def cell_equations(cell: ConvLSTMCell, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """h_t, c_t written out from REFERENCE.md section 1, gate order i, f, o, g."""
    z = F.conv2d(x, cell.input_conv.weight, padding=1) + F.conv2d(
        h, cell.hidden_conv.weight, cell.hidden_conv.bias, padding=1
    )
    n = cell.channels
    z_i, z_f, z_o, z_g = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
    p_i, p_f, p_o = cell.peephole[0], cell.peephole[1], cell.peephole[2]
    i = torch.sigmoid(z_i + p_i * c)
    f = torch.sigmoid(z_f + p_f * c)
    o = torch.sigmoid(z_o + p_o * c)  # c_{t-1}, not c_t
    g = torch.tanh(z_g)  # no peephole
    c_t = f * c + i * g
    return o * torch.tanh(c_t), c_t


def test_cell_follows_its_equations() -> None:
    cell = random_cell()
    generator = torch.Generator().manual_seed(1)
    x, h, c = (torch.randn(2, k, 5, 6, generator=generator, dtype=torch.float64) for k in (2, 3, 3))
    with torch.no_grad():
        h_t, c_t = cell(x, (h, c))
        want_h, want_c = cell_equations(cell, x, h, c)
    assert h_t.shape == c_t.shape == (2, 3, 5, 6)
    torch.testing.assert_close(c_t, want_c, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_t, want_h, rtol=0, atol=1e-12)


def test_cell_without_input_equals_zero_input() -> None:
    cell = random_cell()
    generator = torch.Generator().manual_seed(2)
    h, c = (torch.randn(2, 3, 5, 6, generator=generator, dtype=torch.float64) for _ in range(2))
    with torch.no_grad():
        without = cell(None, (h, c))
        zeros = cell(torch.zeros(2, 2, 5, 6, dtype=torch.float64), (h, c))
    assert torch.equal(without[0], zeros[0])
    assert torch.equal(without[1], zeros[1])


def test_cell_without_state_equals_zero_state() -> None:
    cell = random_cell()
    x = torch.randn(2, 2, 5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zeros = torch.zeros(2, 3, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        without, with_zeros = cell(x, None), cell(x, (zeros, zeros))
    torch.testing.assert_close(without, with_zeros, rtol=0, atol=1e-15)


def test_cell_needs_an_input_or_a_state() -> None:
    with pytest.raises(ValueError, match="needs an input or a state"):
        random_cell()(None, None)


# --- state routing of the encoder-forecaster -------------------------------------------------------------


def record_cell_calls(net: EncoderForecaster) -> tuple[dict[str, list], list]:
    """Forward hooks that record (x, state in, state out) of every ConvLSTM call, by layer name."""
    calls: dict[str, list] = {name: [] for name, *_ in CELLS}
    handles = [
        getattr(net, name).register_forward_hook(
            lambda module, args, out, name=name: calls[name].append((args[0], args[1], out))
        )
        for name in calls
    ]
    return calls, handles


def same_state(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_forecaster_starts_from_the_final_encoder_states(model: EncoderForecaster) -> None:
    calls, handles = record_cell_calls(model)
    try:
        with torch.no_grad():
            model(frames(1, 3), tau_out=2)
    finally:
        for handle in handles:
            handle.remove()
    for name, *_ in CELLS:
        assert len(calls[name]) == (3 if name.startswith("encode") else 2), name
        # every cell carries its own state from step to step
        for before, after in zip(calls[name], calls[name][1:], strict=False):
            assert same_state(after[1], before[2]), name
    for name in ("encode_lstm1", "encode_lstm2", "encode_lstm3"):
        assert calls[name][0][1] is None, f"{name} must start from the zero state (None)"
    for decoder, encoder in (
        ("decode_lstm1", "encode_lstm3"),
        ("decode_lstm2", "encode_lstm2"),
        ("decode_lstm3", "encode_lstm1"),
    ):
        assert same_state(calls[decoder][0][1], calls[encoder][-1][2]), f"{decoder} <- {encoder}"
    assert all(x is None or not x.any() for x, _, _ in calls["decode_lstm1"]), "decode_lstm1's input is zero"


def test_output_ignores_decode_lstm1_input_weights() -> None:
    torch.manual_seed(0)
    net = EncoderForecaster().eval()
    x = frames(1, 2)
    with torch.no_grad():
        before = net(x)
        net.decode_lstm1.input_conv.weight.normal_(std=10.0)
        after = net(x)
    assert torch.equal(before, after)


@pytest.mark.parametrize("layer", ["conv1", "encode_lstm1", "encode_lstm2", "encode_lstm3"])
def test_output_depends_on_every_encoder_level(layer: str) -> None:
    torch.manual_seed(0)
    net = EncoderForecaster().eval()
    x = frames(1, 2)
    with torch.no_grad():
        before = net(x)
        for parameter in getattr(net, layer).parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
        after = net(x)
    assert (before - after).abs().max() > 1e-6


def test_output_depends_on_the_order_of_the_input_frames(model: EncoderForecaster) -> None:
    x = frames(1, 3)
    with torch.no_grad():
        assert (model(x) - model(x.flip(1))).abs().max() > 1e-6


def test_longer_forecast_extends_a_shorter_one(model: EncoderForecaster) -> None:
    x = frames(1, 2)
    with torch.no_grad():
        short, long = model(x, tau_out=2), model(x, tau_out=4)
    torch.testing.assert_close(long[:, :2], short, rtol=0, atol=1e-6)


def test_batch_items_are_independent(model: EncoderForecaster) -> None:
    x = frames(2, 2)
    with torch.no_grad():
        both = model(x)
        second = model(x[1:])
    torch.testing.assert_close(both[1:], second, rtol=1e-4, atol=1e-5)
