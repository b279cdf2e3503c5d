"""The network of REFERENCE.md section 1: its size, its shapes, the cell's equations and the state routing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anomaly.model.convlstm import ConvLSTMCell, EncoderForecaster, count_parameters

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


def test_initialisation_follows_the_paper() -> None:
    torch.manual_seed(0)
    net = EncoderForecaster()
    for name, *_ in CELLS:
        cell = getattr(net, name)
        assert torch.equal(cell.peephole, torch.ones_like(cell.peephole))
        assert torch.equal(cell.hidden_conv.bias, torch.zeros_like(cell.hidden_conv.bias))
    assert net.encode_lstm3.hidden_conv.weight.std().item() == pytest.approx(0.01, rel=0.05)
    for name in ("conv1", "conv2", "conv3", "deconv1", "deconv2", "deconv3"):
        assert torch.equal(getattr(net, name).bias, torch.zeros_like(getattr(net, name).bias))
    # He's std for rectifiers, sqrt(2 / fan_in), fan_in = 16 * 3 * 3 for conv2 (4608 weights).
    assert net.conv2.weight.std().item() == pytest.approx((2 / 144) ** 0.5, rel=0.05)


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


def test_cell_zero_state() -> None:
    cell = random_cell()
    like = torch.empty(0, dtype=torch.float64)
    h, c = cell.zero_state(4, like)
    assert h.shape == c.shape == (4, 3, 5, 6)
    assert h.dtype == torch.float64
    assert not h.any() and not c.any()


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
        h, c = calls[name][0][1]
        assert not h.any() and not c.any(), f"{name} must start from zero"
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
