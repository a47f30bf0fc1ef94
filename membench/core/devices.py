"""The one device resolver: every command and library entry point turns ``--device`` into a
torch device string here, before anything is written.

* ``auto``: CUDA when there is a GPU, else the CPU; the fallback is said once per command
  (``announce``; the CLI prints ``membench: note: ...`` on stderr, the library warns).
* ``cpu``, ``cuda``, ``cuda:N``, ``mps``: exactly that device, or a :class:`DeviceError` when it
  is not there (no CUDA, no GPU number N, an unknown name such as ``tpu``). Nothing falls back.
"""
from __future__ import annotations

import contextlib
import re
import warnings
from typing import Callable, Iterator

from membench.core.errors import DeviceError

DEVICE_RE = re.compile(r"(cpu|cuda|mps)(?::(\d+))?")
FALLBACK_NOTE = "--device auto: no CUDA device here; running on the CPU"

# Where the auto fallback is said: the CLI sets a printer for the duration of a command; the
# library default is a warning (Python shows it once per place).
_announcer: Callable[[str], None] | None = None
_announced = False


class DeviceFallbackWarning(UserWarning):
    pass


def set_announcer(fn: Callable[[str], None] | None) -> None:
    """Say the fallback through ``fn`` (once until the next call), or by a warning (None)."""
    global _announcer, _announced
    _announcer, _announced = fn, False


def _announce(msg: str) -> None:
    global _announced
    if _announced:
        return
    _announced = True
    if _announcer is not None:
        _announcer(msg)
    else:
        warnings.warn(msg, DeviceFallbackWarning, stacklevel=3)


def resolve_device(device: str | None) -> str:
    """The torch device for ``device`` (see module doc); one-line DeviceError when it is not here."""
    import torch

    text = "auto" if device is None else str(device).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return "cuda"
        _announce(FALLBACK_NOTE)
        return "cpu"
    m = DEVICE_RE.fullmatch(text)
    if m is None:
        raise DeviceError(f"--device {device}: unknown device (use auto, cpu, cuda, cuda:N or mps)")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        if index not in (None, "0"):
            raise DeviceError(f"--device {device}: there is one CPU device (use cpu)")
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise DeviceError(f"--device {device}: there is no CUDA device {index} ({count} visible: "
                              f"{', '.join(f'cuda:{i}' for i in range(count))})")
        return text
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available() or index not in (None, "0"):
        raise DeviceError(f"--device {device}: no Apple MPS device on this machine")
    return "mps"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU thread count set to ``n`` inside the block, restored after: small networks pay
    more for a second thread's synchronization than they gain, and one thread is reproducible."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
