"""The loggers: W&B runs never prompt or hang (offline without credentials or without a reachable server), and a
run's console carries no advertisement or deprecation notice that no setting of ours can act on."""

from __future__ import annotations

import logging
import netrc
import os
import socket
import warnings
from typing import Any
from urllib.parse import urlparse

import pytorch_lightning as pl


class WandbLogger(pl.loggers.WandbLogger):
    """Lightning's W&B logger, less the ``anonymous=None`` that it passes to ``wandb.init`` unasked: wandb 0.31 warns
    on every run that the setting has no effect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        init = getattr(self, "_wandb_init", {})  # Lightning's own (private) arguments of wandb.init
        if "anonymous" in init and init["anonymous"] is None:
            del init["anonymous"]


class _NoTips(logging.Filter):
    """Drops Lightning's "💡 Tip" lines: advertisements for its cloud services, on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_NoTips())
# Lightning 2.6's test loop builds torch's LeafSpec, which torch 2.13 deprecates: a notice for Lightning, not for us
warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)


def wandb_mode(timeout: float = 3.0) -> str:
    """``WANDB_MODE`` if set; else ``online`` only with credentials and a server that answers in time."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host = url.hostname or "api.wandb.ai"
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    if not has_key:
        try:
            has_key = bool(netrc.netrc(os.environ.get("NETRC")).authenticators(host))
        except (OSError, netrc.NetrcParseError):
            has_key = False
    if not has_key:
        return "offline"
    try:
        socket.create_connection((host, url.port or 443), timeout=timeout).close()
    except OSError:
        return "offline"
    return "online"
