"""Resolving auxiliary models (embedding, NLI) by alias, folder or hub id, without hanging offline.

A hub id that is not in the local Hugging Face cache is only fetched when the hub answers a quick
connection probe: offline, ``from_pretrained`` would otherwise retry for about a minute per file.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse


class AuxModelUnavailable(RuntimeError):
    """An auxiliary model could not be loaded; ``reason`` says why (the metric's reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def detect_device() -> str:
    """cuda, else mps, else cpu (local helper: the aux models only need a device string)."""
    import torch  # lazy: the pure metrics must not pay for importing torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def looks_like_path(name: str) -> bool:
    """True for names that can only be folders (absolute, ./, ../, ~, or an existing path)."""
    return (
        Path(name).expanduser().exists()
        or name.startswith(("/", "./", "../", "~", "\\"))
        or name.count("/") > 1
    )


def hub_offline_reason() -> str | None:
    """Why the hub cannot be reached right now, or None when it answers a TCP probe."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return None
    except OSError as err:
        return f"{host} is unreachable ({err})"
