"""Bring-your-own-model check on a GPU: a 32x32 RGB DDPM-format teacher, imported, distilled, measured.

    python scripts/gpu_byo.py                    # CUDA (refuses to run without it); about 5 minutes at most
    python scripts/gpu_byo.py --cpu --quick      # the same steps, seconds-sized, on CPU (what the test runs)

From the repository root (the package is imported from the checkout, no install needed). It
builds a `DDPMPipeline` (UNet2DModel 32x32x3, epsilon, linear betas: the layout of
`google/ddpm-cifar10-32`) with random weights and a random 32x32 RGB training set, saves it,
`membench import`s it, distils it with `cd`, and runs l2ratio, carlini and sharpness on the
teacher and the student. It writes `timings.json` (seconds per stage, device, versions) and
`leaderboard.csv` into --out. No Ray. Needs diffusers and faiss: where the GPU image lacks them,
carry wheels (`pip download diffusers faiss-cpu -d wheels/` here, then
`pip install --no-index --find-links wheels/ diffusers faiss-cpu` there).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on CPU (the test; CUDA is required otherwise)")
    ap.add_argument("--quick", action="store_true", help="seconds-sized settings (a smoke test, not a measurement)")
    ap.add_argument("--out", default="gpu-byo-out", help="output folder (workspace, cache, timings)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    missing = [m for m in ("diffusers", "faiss") if _absent(m)]
    if missing:
        print(f"gpu_byo: missing {', '.join(missing)}: pip install --no-index --find-links wheels/ "
              + " ".join("faiss-cpu" if m == "faiss" else m for m in missing), file=sys.stderr)
        return 2
    import numpy as np
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_byo: no CUDA device; pass --cpu to run the steps on CPU", file=sys.stderr)
        return 2
    device = "cpu" if args.cpu else "cuda"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MEMBENCH_HOME"] = str(out / "workspace")
    os.environ["MEMBENCH_CACHE"] = str(out / "cache")
    size = dict(channels=[16, 16], n_train=16, n_held=8, iters=2, n=4, ddim=3, sharpness="sharpness:probes=1,iters=1") \
        if args.quick else dict(channels=[64, 128], n_train=1000, n_held=200, iters=300, n=500, ddim=50,
                                sharpness="sharpness")
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        timings[name] = round(time.time() - t0, 2)
        print(f"{name}: {timings[name]} s", flush=True)

    t0 = time.time()
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    import membench
    from membench.training.distill import distill_from_registry

    torch.manual_seed(0)
    c = size["channels"]
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=c, layers_per_block=1,
                       down_block_types=["DownBlock2D", "AttnDownBlock2D"],
                       up_block_types=["AttnUpBlock2D", "UpBlock2D"], norm_num_groups=8)
    teacher_dir = out / "ddpm32"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(teacher_dir)
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, (size["n_train"] + size["n_held"], 3, 32, 32)).astype(np.float32)
    train = out / "train32.npz"
    np.savez(train, images=data[: size["n_train"]], heldout=data[size["n_train"]:])
    stage("build", t0)

    t0 = time.time()
    info = membench.import_model(teacher_dir, name="ddpm32", train=str(train), sampler=f"ddim:steps={size['ddim']}",
                                 force=True)
    print({k: info[k] for k in ("parameterization", "resolution", "channels", "sampler")})
    stage("import", t0)

    t0 = time.time()
    distill_from_registry("ddpm32", f"cd:iterations={size['iters']},batch_size=32,levels=18", name="ddpm32-cd",
                          device=device, progress=False, eval_samples=0, force=True)
    stage("distill", t0)

    t0 = time.time()
    board = membench.run(models="ddpm32,ddpm32-cd", detectors=f"l2ratio,carlini,{size['sharpness']}", n_samples=size["n"],
                         device=device, quality=False, force=True)
    stage("detect", t0)
    board.to_csv(out / "leaderboard.csv", index=False)
    print(board[["model", "detector", "status", "memorized"]].to_string(index=False))
    meta = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
            "quick": bool(args.quick), "seconds": timings, "total_seconds": round(sum(timings.values()), 2),
            "settings": size}
    (out / "timings.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / 'timings.json'}")
    return 0 if (board["status"] == "ok").all() else 1


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


if __name__ == "__main__":
    sys.exit(main())
