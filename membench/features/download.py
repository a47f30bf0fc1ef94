"""Fetching published weights into the cache, only when the machine is online.

Offline machines (``HF_HUB_OFFLINE=1`` or ``MEMBENCH_OFFLINE=1``, or a host that does not
answer within a few seconds) are detected up front, so a missing file costs a fraction
of a second instead of a minute of retries.
"""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from membench.core.io import FILE_MODE

TRUTHY = {"1", "true", "yes", "on"}


def offline_env() -> bool:
    return any(os.environ.get(v, "").strip().lower() in TRUTHY for v in ("MEMBENCH_OFFLINE", "HF_HUB_OFFLINE"))


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def can_download(url: str) -> bool:
    return not offline_env() and reachable(urlparse(url).hostname or "")


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Stream ``url`` to a temporary sibling of ``dest``, then rename: never a half file at ``dest``."""
    from urllib.request import urlopen

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; the cache follows the user's umask
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
