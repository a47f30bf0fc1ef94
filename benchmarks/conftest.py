"""Benchmarks report ratios against a baseline measured in the same run (machines are noisy).

In each pytest-benchmark group the benchmark whose name contains ``baseline`` is the
reference; the summary prints every other member's mean time as a multiple of it.
"""
from __future__ import annotations

from collections import defaultdict


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups = defaultdict(list)
    for bench in session.benchmarks:
        if bench.stats is not None:
            groups[bench.group].append(bench)
    tr = terminalreporter
    tr.write_sep("-", "ratios to the same-run baseline (mean time; < 1 is faster)")
    for group, benches in sorted(groups.items(), key=lambda kv: str(kv[0])):
        base = [b for b in benches if "baseline" in b.name]
        if not base:
            continue
        ref = base[0].stats.mean
        for b in benches:
            if b is not base[0]:
                tr.write_line(f"{group}: {b.name} = {b.stats.mean / ref:.3f} x {base[0].name}")
                peak, base_peak = b.extra_info.get("peak_mib"), base[0].extra_info.get("peak_mib")
                if peak and base_peak:  # memory benchmarks: peak resident memory, same ratio rule
                    tr.write_line(f"{group}: {b.name} peak memory = {peak / base_peak:.3f} x {base[0].name}")
