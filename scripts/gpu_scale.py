"""Scale checks for a GPU machine (run by scripts/gpu_scale.sh; no Ray): sampling on the device
against the CPU, the sharpness detector on the device, and exact k-NN on the device (faiss-gpu
when it imports, else torch's matrix product and top-k) against the same-shape matrix product.

Every figure is a ratio against a baseline measured in the same run, plus the absolute times.
``--device cpu --small`` runs the same code on a CPU-only machine (a dry run of the script).
Writes ``<out>/gpu_scale.json`` and prints one line per measurement.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, *args, repeat: int = 3, sync: str = "cpu"):
    fn(*args)  # warm-up (kernels, caches)
    best, out = float("inf"), None
    for _ in range(repeat):
        if sync.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        if sync.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def sampling(device: str, n_dev: int, n_cpu: int, models: list[str]) -> list[dict]:
    from membench.executors.base import sample_range
    from membench.models.checkpoints import load_denoiser
    from membench.models.specs import resolve_model

    rows = []
    for name in models:
        spec = resolve_model(name)
        res = {}
        for dev, n in ((device, n_dev), ("cpu", n_cpu)):
            model, meta = load_denoiser(spec.checkpoint, dev)
            batch = min(500, n) if dev == "cpu" else n
            t, x = timed(sample_range, model, spec.sampler, 0, 0, n, tuple(meta["image_shape"]), dev, batch,
                         repeat=2, sync=dev)
            res[dev] = (n / t, x)
        cpu_rate = res["cpu"][0]
        same_n = min(n_dev, n_cpu)
        diff = float(np.abs(res[device][1][:same_n] - res["cpu"][1][:same_n]).max())
        rows.append({"model": name, f"{device}_samples_per_s": res[device][0], "cpu_samples_per_s": cpu_rate,
                     "speedup_vs_cpu": res[device][0] / cpu_rate, "max_abs_diff_vs_cpu": diff})
    return rows


def sharpness(device: str, n: int) -> dict:
    from membench.data import load_dataset
    from membench.detectors import make_detector
    from membench.models.checkpoints import load_denoiser
    from membench.models.specs import resolve_model

    spec = resolve_model("teacher")
    images = np.asarray(load_dataset(spec.dataset).heldout[:n])
    det = make_detector("sharpness")
    out = {}
    for dev in dict.fromkeys((device, "cpu")):
        model, _ = load_denoiser(spec.checkpoint, dev)
        t, s = timed(det.measure, model, images, dev, repeat=1, sync=dev)
        out[dev] = (t, s["sharpness"])
    return {"images": n, f"{device}_s": out[device][0], "cpu_s": out["cpu"][0],
            "speedup_vs_cpu": out["cpu"][0] / out[device][0],
            "max_abs_score_diff_vs_cpu": float(np.abs(out[device][1] - out["cpu"][1]).max())}


def knn(device: str, queries: int, refs: int, dim: int, k: int = 2) -> dict:
    """Exact k nearest neighbours (squared L2) of ``queries`` among ``refs`` on ``device``."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(queries, dim, generator=g).to(device)
    r = torch.randn(refs, dim, generator=g).to(device)
    engine = "torch matmul + topk"
    try:
        import faiss

        if device.startswith("cuda") and hasattr(faiss, "StandardGpuResources"):
            engine = "faiss-gpu"
    except ImportError:
        pass

    def torch_knn(chunk: int = 262_144):
        rn = (r * r).sum(1)
        best_d, best_i = None, None
        for s in range(0, refs, chunk):
            d = rn[s : s + chunk][None, :] - 2 * q @ r[s : s + chunk].T
            dv, di = d.topk(k, dim=1, largest=False)
            di = di + s
            if best_d is None:
                best_d, best_i = dv, di
            else:
                cd, ci = torch.cat([best_d, dv], 1), torch.cat([best_i, di], 1)
                best_d, pos = cd.topk(k, dim=1, largest=False)
                best_i = ci.gather(1, pos)
        return best_i

    if engine == "faiss-gpu":
        import faiss

        res = faiss.StandardGpuResources()
        rc, qc = r.cpu().numpy(), q.cpu().numpy()
        fn = lambda: faiss.knn_gpu(res, qc, rc, k)[1]  # noqa: E731
    else:
        fn = torch_knn
    t_knn, _ = timed(fn, sync=device)
    m = min(refs, 262_144)
    t_mm, _ = timed(lambda: q @ r[:m].T, sync=device)
    t_mm *= refs / m  # the same-shape product, in chunks as large as the search's
    return {"engine": engine, "queries": queries, "refs": refs, "dim": dim, "k": k, "knn_s": t_knn,
            "matmul_s": t_mm, "knn_over_matmul": t_knn / t_mm,
            "effective_gflops": 2 * queries * refs * dim / t_knn / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cuda, or cpu (a dry run)")
    ap.add_argument("--small", action="store_true", help="small sizes (a CPU dry run in about a minute)")
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    from membench.models.samples import resolve_device

    device = resolve_device(a.device)
    if a.small:
        cfg = {"n_dev": 16, "n_cpu": 16, "sharp": 8, "knn": [(100, 5_000, 64), (50, 2_000, 3072)]}
    else:
        cfg = {"n_dev": 10_000, "n_cpu": 500, "sharp": 2_000,
               "knn": [(10_000, 1_000_000, 64), (2_000, 200_000, 3072), (1_000, 100_000, 12_288)]}
    report = {"device": device, "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
              "torch": torch.__version__, "machine": platform.platform(), "config": cfg}
    t0 = time.time()
    report["sampling"] = sampling(device, cfg["n_dev"], cfg["n_cpu"], ["teacher", "cd-student"])
    for row in report["sampling"]:
        print("sampling", json.dumps(row), flush=True)
    report["sharpness"] = sharpness(device, cfg["sharp"])
    print("sharpness", json.dumps(report["sharpness"]), flush=True)
    report["knn"] = [knn(device, *shape) for shape in cfg["knn"]]
    for row in report["knn"]:
        print("knn", json.dumps(row), flush=True)
    report["wall_s"] = round(time.time() - t0, 1)
    out = Path(a.out) / "gpu_scale.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()
