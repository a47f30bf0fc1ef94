"""Fault injection for the fault-loop tests (tests/test_fault_loops.py): named points in the
write paths where a test makes the process die as a user's Ctrl-C or a kill would.

``MEMBENCH_FAULT=<point>:<signal>[:<n>]`` (signal ``INT`` or ``KILL``; the ``n``-th time the
point is reached, default 1) sends that signal to the process itself at the point. Unset (always,
outside the tests), a point costs one dictionary lookup. The points: ``samples-generated``
(before the sample cache is written), ``record-arrays-written`` (a record's arrays are on disk,
its JSON not yet), ``record-written``, ``distill-trained`` (before the model card's evaluation),
``distill-evaluating`` (inside it), ``distill-checkpoint-placed`` (the checkpoint renamed into
place, the registry entry not yet written).
"""
from __future__ import annotations

import os
import signal

ENV = "MEMBENCH_FAULT"
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec or not spec.startswith(name + ":"):
        return
    parts = spec.split(":")
    sig = {"INT": signal.SIGINT, "KILL": signal.SIGKILL}[parts[1]]
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == (int(parts[2]) if len(parts) > 2 else 1):
        os.kill(os.getpid(), sig)  # SIGINT: Python raises KeyboardInterrupt right after this call
