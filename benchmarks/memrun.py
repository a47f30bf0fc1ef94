"""One detector run in a fresh process, printing its peak resident memory (for test_memory_bench.py).

    python benchmarks/memrun.py TRAIN.npy SAMPLES.npy [DETECTOR]

Prints one JSON line: ``maxrss_mib`` (the process's peak resident set, ``VmHWM``,
memory-mapped pages it touched included), ``seconds`` and the detector's memorized fraction.
"""
from __future__ import annotations

import json
import resource
import sys
import time


def peak_resident_kib() -> int:
    """This process's peak resident set in KiB: ``VmHWM`` where Linux has it (``ru_maxrss``
    survives ``exec``, so a child forked from a large pytest process would report the
    parent's peak), else ``ru_maxrss``."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main() -> None:
    import membench

    train, samples = sys.argv[1], sys.argv[2]
    detector = sys.argv[3] if len(sys.argv) > 3 else "l2ratio"
    start = time.perf_counter()
    board, _ = membench.detect(samples, train, detectors=detector, device="cpu")
    seconds = time.perf_counter() - start
    peak_kib = peak_resident_kib()
    print(json.dumps({"maxrss_mib": peak_kib / 1024, "seconds": seconds,
                      "memorized": float(board["memorized"].iloc[0])}))


if __name__ == "__main__":
    main()
