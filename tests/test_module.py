"""The LightningModule follows the authors' recipe (REFERENCE.md sections 3 and 3a): Eq. 1 loss, Adam with
coupled L2 decay except on conv/deconv biases, which learn at twice the rate; settings checked up front."""

from __future__ import annotations

import pytest
import torch
from helpers.config import build_module
from pytorch_lightning.utilities.model_summary import ModelSummary

from anomaly.bench.modes import count_flops
from anomaly.errors import ConfigError

LAYERS = ("conv1", "conv2", "conv3", "deconv1", "deconv2", "deconv3")


def test_optimiser_is_the_authors_adam_with_their_per_parameter_multipliers() -> None:
    module = build_module()
    optimizer = module.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam  # coupled L2 as Caffe, not AdamW
    weights, biases = optimizer.param_groups
    assert (weights["lr"], weights["weight_decay"], weights["betas"]) == (1e-4, 5e-4, (0.9, 0.999))
    assert (biases["lr"], biases["weight_decay"]) == (2e-4, 0.0)  # lr_mult 2, decay_mult 0
    net = module.net
    assert {id(p) for p in biases["params"]} == {id(getattr(net, name).bias) for name in LAYERS}
    weight_ids = {id(p) for p in weights["params"]}
    assert id(net.encode_lstm2.hidden_conv.bias) in weight_ids and id(net.decode_lstm3.peephole) in weight_ids
    # everything trained is in one group; only decode_lstm1's zero-input weights (frozen) are in none
    frozen = [p for p in net.parameters() if id(p) not in weight_ids | {id(p) for p in biases["params"]}]
    assert frozen == [net.decode_lstm1.input_conv.weight]


def test_the_fused_adam_step_equals_the_plain_one() -> None:
    """The fused optimiser (one kernel for all parameters) makes the update of the per-parameter loop."""
    torch.manual_seed(0)
    fused, plain = build_module("tau=1"), build_module("tau=1")
    plain.load_state_dict(fused.state_dict())
    volume = torch.randint(0, 256, (2, 2, 1, 227, 227), dtype=torch.uint8)
    optimizers = [fused.configure_optimizers(), plain.configure_optimizers()]
    assert optimizers[0].defaults["fused"]
    for group in optimizers[1].param_groups:
        group["fused"], group["foreach"] = False, False
    for _ in range(2):
        for module, optimizer in zip((fused, plain), optimizers, strict=True):
            optimizer.zero_grad()
            module.loss(volume).backward()
            optimizer.step()
    for (name, a), b in zip(fused.net.named_parameters(), plain.net.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name
    assert fused.net.conv1.bias.abs().max() > 1e-5  # biases start at 0: the steps moved them


def test_bias_learning_rate_multiplier_is_a_setting() -> None:
    _, biases = build_module("model.bias_lr_mult=1").configure_optimizers().param_groups
    assert biases["lr"] == 1e-4


def test_loss_is_eq1_squared_error_over_the_output_volume_divided_by_2_n_tau() -> None:
    torch.manual_seed(0)
    module = build_module("tau=2", "task=prediction")
    volume = torch.randint(0, 256, (3, 4, 1, 227, 227), dtype=torch.uint8)
    frames = volume.float() / 255
    with torch.no_grad():
        expected = (module(frames[:, :2]) - frames[:, 2:]).square().sum() / (2 * 3 * 2)
        assert torch.allclose(module.loss(volume), expected)


def test_a_compiled_module_computes_the_eager_loss_and_gradients() -> None:
    """Under ``model.compile`` Eq. 1 is one compiled graph (the frames' conversion, the network and the loss, with
    inductor's C++ wrapper on the CPU): the same loss and gradients as the eager module, to float rounding."""
    torch.manual_seed(0)
    eager = build_module("tau=1")
    compiled = build_module("tau=1", "model.compile=true")
    compiled.load_state_dict(eager.state_dict())
    volume = torch.randint(0, 256, (2, 2, 1, 227, 227), dtype=torch.uint8)
    losses = [module.loss(volume) for module in (eager, compiled)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=0)
    assert set(compiled._graphs) == {"_loss"}  # the compiled path ran, not the eager one
    for (name, a), b in zip(compiled.net.named_parameters(), eager.net.parameters(), strict=True):
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6 * b.grad.abs().max().item(), msg=name)


def test_a_compiled_module_pads_a_short_scored_batch_and_keeps_its_numbers() -> None:
    """Under ``model.compile`` (here with CUDA graphs, which the CPU skips) a short last batch is padded to the
    first batch's size (one graph for every batch); the padding's outputs are dropped and the real windows
    score the same."""
    torch.manual_seed(0)
    plain = build_module("tau=1").eval()
    padded = build_module("tau=1", "model.compile=true", "model.compile_mode=reduce-overhead").eval()
    padded.load_state_dict(plain.state_dict())
    windows = torch.randint(0, 256, (3, 2, 1, 227, 227), dtype=torch.uint8)
    with torch.no_grad():
        first = padded.window_errors(windows[:1], batch=3)  # a stream's first window, padded to the batch of 3
        padded.window_errors(windows)
        short = padded.window_errors(windows[:2])  # a test set's short last batch
        expected = plain.window_errors(windows[:2])
    assert padded._scored_batch == 3 and first["errors"].shape == (1,)
    torch.testing.assert_close(first["errors"], expected["errors"][:1], rtol=1e-5, atol=1e-4)
    assert short["errors"].shape == (2,) and short["last_output"].shape == expected["last_output"].shape
    torch.testing.assert_close(short["errors"], expected["errors"], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(short["psnr"], expected["psnr"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.init=glorot", "model.init='glorot'"),
        ("model.lr=-1", "model.lr=-1"),
        ("model.bias_lr_mult=-2", "model.bias_lr_mult=-2"),
        ("tau=0", "tau=0"),
        ("model.compile_mode=reduce_overhead", "model.compile_mode='reduce_overhead'"),
        ("model.compile_mode=reduce-overhead", "only with model.compile=true"),
    ],
)
def test_bad_model_settings_are_refused_before_training(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_module(override)


@pytest.mark.parametrize("tau", [2, 5])
def test_the_model_summary_counts_one_test_window_as_the_benchmark_does(tau: int) -> None:
    """Lightning's summary, printed at the start of every run, shows the FLOPs of one window (not "0 Total Flops"):
    the network's arithmetic as the benchmark counts it, to within the sub-pixel form of deconv3 that it runs."""
    module = build_module(f"tau={tau}")
    summary = ModelSummary(module)
    _, window = count_flops(module, tau, torch.device("cpu"))
    assert summary.total_flops == pytest.approx(window, rel=0.01)
    assert summary.in_sizes[0][0] == [1, tau, 1, 227, 227]
