"""The ratio table of a benchmark run: `python benchmarks/report.py benchmarks/results/benchmarks.json`.

Reads pytest-benchmark's JSON (``--benchmark-json``) and, per group, divides every member by
the group's ``*baseline*`` member measured in the same run: mean time, and where the members
record them, the effective rate (``extra_info.flops`` / time, also divided by the square-GEMM
rate of the same run) and the peak memory (``extra_info.peak_mib``). Prints a markdown table
and writes it, with the machine, as ``<json folder>/ratios.md`` and ``ratios.json``.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

SQUARE_GROUP = "square float32 GEMM 4096^3"
# Projection targets: (name, training images, dim, what the vectors are)
TARGETS = [("CIFAR-10", 50_000, 3072, "32x32 RGB pixels"),
           ("ImageNet-1k at 64x64", 1_281_167, 12288, "64x64 RGB pixels"),
           ("LAION-scale", 2_000_000_000, 768, "embeddings (CLIP ViT-L/14 width)")]
QUERIES = 10_000  # generated samples per model
APPROXIMATE_ABOVE = 1_000_000  # the rule: approximate indexes beyond ~1M training images


def rows(data: dict) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"] or ""].append(b)
    square = next((b for b in groups.get(SQUARE_GROUP, []) if "baseline" in b["name"]), None)
    square_rate = square["extra_info"]["flops"] / square["stats"]["mean"] if square else None
    out = []
    for group, members in sorted(groups.items()):
        base = next((b for b in members if "baseline" in b["name"]), None)
        for b in members:
            row = {"group": group, "name": b["name"], "baseline": base["name"] if base else None,
                   "mean_s": b["stats"]["mean"], "rounds": b["stats"]["rounds"]}
            if base is not None and b is not base:
                row["time_ratio"] = b["stats"]["mean"] / base["stats"]["mean"]
                if "flops" in b["extra_info"]:
                    row["speed_vs_baseline"] = base["stats"]["mean"] / b["stats"]["mean"]
            flops = b["extra_info"].get("flops")
            if flops and square_rate and group != SQUARE_GROUP:
                row["gflops"] = flops / b["stats"]["mean"] / 1e9
                row["rate_vs_square_gemm"] = flops / b["stats"]["mean"] / square_rate
            if "peak_mib" in b["extra_info"]:
                row["peak_mib"] = b["extra_info"]["peak_mib"]
                if base is not None and "peak_mib" in base["extra_info"]:
                    row["peak_ratio"] = b["extra_info"]["peak_mib"] / base["extra_info"]["peak_mib"]
                for key in ("bound_mib", "chunk_mib"):
                    if key in b["extra_info"]:
                        row[key] = b["extra_info"][key]
            out.append(row)
    if square_rate:
        out.append({"group": SQUARE_GROUP, "name": "rate", "gflops": square_rate / 1e9})
    return out


def projection(rs: list[dict]) -> list[dict]:
    """Exact-search time for QUERIES samples against each target, from the measured knn_l2 rate at the
    nearest measured dimension (cost = 2 x queries x references x dim at that rate; the measured
    rate is flat in the number of references because the search streams)."""
    rates = {}
    for r in rs:
        if r["name"].startswith("test_membench_knn_l2") and "gflops" in r:
            rates[int(r["name"].split("[")[1].rstrip("]"))] = r["gflops"]
    out = []
    for name, n, dim, what in TARGETS:
        if not rates:
            break
        near = min(rates, key=lambda d: abs(d - dim))
        seconds = 2.0 * QUERIES * n * dim / (rates[near] * 1e9)
        data_gib = n * dim * 4 / 2**30
        index = "exact" if n <= APPROXIMATE_ABOVE else "ivf"
        note = {"exact": "streams a memory-mapped .npy",
                "ivf": "IVF-Flat holds the vectors in memory" + (
                    f" ({data_gib / 1024:.1f} TiB here: needs compressed codes (IVF-PQ, not implemented) "
                    "or sharding over machines)" if data_gib > 1024 else "")}[index]
        out.append({"target": name, "train_n": n, "dim": dim, "vectors": what, "queries": QUERIES,
                    "data_gib": data_gib, "rate_from_dim": near, "gflops": rates[near],
                    "exact_hours": seconds / 3600, "index": index, "note": note})
    return out


def table(rs: list[dict]) -> str:
    cols = ["group", "name", "mean_s", "time_ratio", "speed_vs_baseline", "gflops", "rate_vs_square_gemm",
            "peak_mib", "peak_ratio", "bound_mib"]
    fmt = lambda v: "" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rs]
    return "\n".join(lines)


def main(path: str) -> None:
    data = json.loads(Path(path).read_text())
    rs = rows(data)
    mach = data.get("machine_info", {})
    head = (f"machine: {mach.get('cpu', {}).get('brand_raw', '?')}, {mach.get('cpu', {}).get('count', '?')} cores, "
            f"python {mach.get('python_version', '?')}; run {data.get('datetime', '?')}")
    proj = projection(rs)
    ptable = ["| target | training set | dim | float32 data | exact search, 10k samples, this machine | index |",
              "| --- | --- | --- | --- | --- | --- |"]
    ptable += [f"| {p['target']} | {p['train_n']:,} {p['vectors']} | {p['dim']:,} | {p['data_gib']:,.1f} GiB | "
               f"{p['exact_hours']:,.2f} h (at the dim-{p['rate_from_dim']:,} rate, {p['gflops']:.0f} GFLOP/s) | "
               f"{p['index']}: {p['note']} |" for p in proj]
    text = head + "\n\n" + table(rs) + "\n\nProjection:\n\n" + "\n".join(ptable) + "\n"
    print(text)
    folder = Path(path).parent
    (folder / "ratios.md").write_text(text)
    (folder / "ratios.json").write_text(json.dumps({"machine": head, "rows": rs, "projection": proj}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/benchmarks.json")
