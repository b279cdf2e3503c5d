"""The LightningModule follows the paper's recipe: Eq. 1 loss, Adam with coupled L2 decay except on
conv/deconv biases, and scoring settings checked before any training."""

from __future__ import annotations

import pytest
import torch

from anomaly.lightning.module import AnomalyModule


def test_optimiser_is_adam_with_coupled_decay_on_all_but_conv_and_deconv_biases() -> None:
    module = AnomalyModule()
    optimizer = module.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam  # coupled L2 as Caffe, not AdamW
    decayed, undecayed = optimizer.param_groups
    assert (decayed["weight_decay"], undecayed["weight_decay"]) == (5e-4, 0.0)
    assert decayed["lr"] == 1e-4 and decayed["betas"] == (0.9, 0.999)
    net = module.net
    layers = ("conv1", "conv2", "conv3", "deconv1", "deconv2", "deconv3")
    assert {id(p) for p in undecayed["params"]} == {id(getattr(net, name).bias) for name in layers}
    decayed_ids = {id(p) for p in decayed["params"]}
    assert id(net.encode_lstm2.hidden_conv.bias) in decayed_ids and id(net.decode_lstm3.peephole) in decayed_ids
    assert len(decayed_ids) + len(undecayed["params"]) == len(list(net.parameters()))


def test_loss_is_eq1_squared_error_over_the_output_volume_divided_by_2_n_tau() -> None:
    torch.manual_seed(0)
    module = AnomalyModule(tau=2, task="prediction")
    volume = torch.rand(3, 4, 1, 227, 227)
    with torch.no_grad():
        expected = (module(volume[:, :2]) - volume[:, 2:]).square().sum() / (2 * 3 * 2)
        assert torch.allclose(module._loss(volume), expected)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"score": "ssim"}, "scoring.score='ssim'"),
        ({"auc": "weighted"}, "scoring.auc='weighted'"),
        ({"smoothing_sigma": -1.0}, "scoring.smoothing_sigma=-1.0"),
    ],
)
def test_bad_scoring_settings_are_refused_before_training(setting: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AnomalyModule(**setting)
