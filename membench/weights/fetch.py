"""``membench weights fetch``: download one published file into the cache, verified, atomically.

The file is streamed to a temporary sibling of its target while its SHA-256 is computed,
checked against the table (full digest, or the published prefix), and only then renamed
into place: a failed, interrupted or mismatching download leaves nothing at the target.
Offline (``$MEMBENCH_OFFLINE``, ``$HF_HUB_OFFLINE`` for Hugging Face URLs, or a host that does
not answer within a few seconds) it fails at once with one line saying which file to place where.
"""
from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from membench.core.errors import MembenchError
from membench.weights.table import WeightsFile, entry

TRUTHY = {"1", "true", "yes", "on"}
HF_HOSTS = ("huggingface.co", "hf.co")


def offline_env(url: str) -> bool:
    """membench is told to stay offline; the Hugging Face switch counts for Hugging Face URLs only."""
    flags = ["MEMBENCH_OFFLINE"] + (["HF_HUB_OFFLINE"] if (urlparse(url).hostname or "").endswith(HF_HOSTS) else [])
    return any(os.environ.get(v, "").strip().lower() in TRUTHY for v in flags)


def reachable(url: str, timeout: float = 3.0) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "", u.port or (443 if u.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Fetched:
    path: Path
    sha256: str
    size: int
    downloaded: bool  # False: the file was already there and verified
    verified: str  # what was checked: "sha256", "sha256 prefix (32 bits)", or "none published"


def download_verified(url: str, dest: Path, w: WeightsFile, timeout: float = 30.0) -> tuple[str, int]:
    """Stream ``url`` to a temporary file beside ``dest``, hash it, verify, then rename onto ``dest``."""
    from urllib.request import urlopen

    from membench.core.io import FILE_MODE

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) only (table)
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                h.update(block)
                size += len(block)
        digest = h.hexdigest()
        if w.size is not None and size != w.size:
            raise MembenchError(f"{w.name}: {url} gave {size} bytes, the publisher's file has {w.size}; "
                                f"nothing written to {dest}")
        if w.expected and not w.matches(digest):
            raise MembenchError(f"{w.name}: checksum mismatch for {url}: sha256 {digest}, expected {w.check_kind} "
                                f"{w.expected}; nothing written to {dest}")
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; the cache follows the user's umask
        os.replace(tmp, dest)
        return digest, size
    finally:
        Path(tmp).unlink(missing_ok=True)


def fetch(name: str, allow_unverified: bool = False, timeout: float = 30.0) -> Fetched:
    """Download the weights entry ``name`` into ``$MEMBENCH_CACHE`` (a verified present file is kept)."""
    from membench.core.io import file_sha256

    w = entry(name)
    dest = w.path()
    if dest.is_file():
        digest = file_sha256(dest)
        if w.matches(digest) or (not w.expected and allow_unverified):
            return Fetched(dest, digest, dest.stat().st_size, False, w.check_kind)
    if not w.expected and not allow_unverified:
        raise MembenchError(f"{name}: the publisher gives no checksum for {w.url}, so membench will not download "
                            f"it unchecked; pass --allow-unverified to accept it, or {w.place_hint()}")
    if offline_env(w.url) or not reachable(w.url):
        host = urlparse(w.url).hostname
        raise MembenchError(f"{name}: cannot reach {host} (offline); {w.place_hint()}")
    try:
        digest, size = download_verified(w.url, dest, w, timeout)
    except MembenchError:
        raise
    except Exception as exc:  # network trouble: one line, and what to do instead
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise MembenchError(f"{name}: downloading {w.url} failed ({type(exc).__name__}: {first}); "
                            f"{w.place_hint()}") from None
    return Fetched(dest, digest, size, True, w.check_kind)
