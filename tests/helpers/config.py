"""The project's real Hydra config, composed for tests, and what it builds."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

import anomaly.jobs.run  # noqa: F401  (registers the config's resolvers)
from anomaly.lightning.module import AnomalyModule

CONF = Path(__file__).resolve().parents[2] / "conf"


def compose_config(name: str = "train", *overrides: str) -> DictConfig:
    """``conf/<name>.yaml`` with command-line style ``overrides`` (``"tau=2"``, ``"model.init=paper"``)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def build_module(*overrides: str) -> AnomalyModule:
    """The LightningModule exactly as ``train.py`` builds it from ``conf/``, with ``overrides``.

    The project's own error comes out as itself, not wrapped in Hydra's InstantiationException.
    """
    try:
        return instantiate(compose_config("train", *overrides).model)
    except InstantiationException as err:
        raise err.__cause__ or err from None
