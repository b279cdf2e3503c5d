"""W&B mode: runs never prompt or hang. Offline without credentials or without a reachable server."""

from __future__ import annotations

import netrc
import os
import socket
from urllib.parse import urlparse


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
