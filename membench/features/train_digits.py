"""Train the digits copy-detection embedder: ``python -m membench.features.train_digits``.

SSCD-style (Pizzi et al. 2022): two augmented views of each image in a batch, InfoNCE
over the 2B descriptors (temperature ``tau``) plus a KoLeo term (``koleo`` x mean of
-log nearest-neighbour distance) that spreads descriptors over the sphere. Data: a seeded
pool of synthetic glyphs (``glyphs.py``), disjoint from every digits split. The
augmentations are the edits a near-copy of a digit may show: sub-pixel and one-pixel shifts, small
rotations and scalings, contrast/brightness changes, Gaussian noise, blur, re-quantization
to the 17 optdigits levels, a small erased patch.

Writes ``<out>/model.safetensors``, ``config.json`` and a model card ``README.md``
atomically (one rename of a temporary folder).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from membench.core.errors import MembenchError


@dataclass
class TrainConfig:
    steps: int = 1500
    batch_size: int = 256
    lr: float = 2e-3
    tau: float = 0.1
    koleo: float = 0.05
    pool: int = 40000  # synthetic glyphs rendered once, sampled with replacement
    width: int = 32
    dim: int = 128
    seed: int = 0


def augment(x: Any, gen: Any) -> Any:
    """A random near-copy edit of each (B, 1, 8, 8) image in [-1, 1] (batched, seeded by ``gen``)."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo: float, hi: float, shape: tuple[int, ...] = (b,)) -> Any:
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    ang = u(-0.15, 0.15)  # radians, about +-9 degrees
    scale = u(0.92, 1.08)
    tx, ty = u(-0.3, 0.3), u(-0.3, 0.3)  # in [-1, 1] grid units: up to 1.2 px
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0  # background stays -1
    keep = torch.rand(b, generator=gen) < 0.25  # a quarter of views are not moved at all
    y = torch.where(keep.view(-1, 1, 1, 1), x, y)
    # a whole-pixel shift in a random direction (background fill), as a re-cropped copy would show
    shift = torch.rand(b, generator=gen) < 0.3
    pad = F.pad(y + 1.0, (1, 1, 1, 1))
    offs = torch.tensor([[0, 1], [2, 1], [1, 0], [1, 2]])[torch.randint(0, 4, (b,), generator=gen)]
    moved = torch.stack([pad[i, :, r : r + 8, c : c + 8] for i, (r, c) in enumerate(offs.tolist())]) - 1.0
    y = torch.where(shift.view(-1, 1, 1, 1), moved, y)
    blur = torch.rand(b, generator=gen) < 0.25
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).div(16).view(1, 1, 3, 3)
    yb = F.conv2d(F.pad(y + 1.0, (1, 1, 1, 1)), k) - 1.0
    y = torch.where(blur.view(-1, 1, 1, 1), yb, y)
    y = (y + 1.0) * u(0.8, 1.15).view(-1, 1, 1, 1) - 1.0 + u(-0.1, 0.1).view(-1, 1, 1, 1)
    y = y + u(0.0, 0.15).view(-1, 1, 1, 1) * torch.randn(y.shape, generator=gen)
    quant = torch.rand(b, generator=gen) < 0.3
    y = torch.where(quant.view(-1, 1, 1, 1), torch.round((y + 1.0) * 8.0) / 8.0 - 1.0, y)
    erase = torch.rand(b, generator=gen) < 0.15
    r, c = torch.randint(0, 7, (b,), generator=gen), torch.randint(0, 7, (b,), generator=gen)
    rows, cols = torch.arange(8).view(1, 8, 1), torch.arange(8).view(1, 1, 8)
    patch = ((rows - r.view(-1, 1, 1)).clamp(min=0) < 2) & (rows >= r.view(-1, 1, 1)) \
        & ((cols - c.view(-1, 1, 1)).clamp(min=0) < 2) & (cols >= c.view(-1, 1, 1))
    y = torch.where((patch & erase.view(-1, 1, 1)).unsqueeze(1), torch.full_like(y, -1.0), y)
    return y.clamp(-1.0, 1.0)


def info_nce(z: Any, tau: float) -> Any:
    """InfoNCE over 2B L2-normalized rows where rows i and i+B are the positive pair."""
    import torch
    import torch.nn.functional as F

    n = z.shape[0] // 2
    sim = z @ z.t() / tau
    sim.fill_diagonal_(-float("inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def koleo(z: Any) -> Any:
    """Kozachenko-Leonenko entropy term: mean -log distance of each row to its nearest other row."""
    import torch

    with torch.no_grad():
        sim = z @ z.t()
        sim.fill_diagonal_(-2.0)
        nn_idx = sim.argmax(1)
    d = (z - z[nn_idx]).norm(dim=1)
    return -torch.log(d + 1e-8).mean()


def train(cfg: TrainConfig, progress: bool = True) -> tuple[Any, dict[str, Any]]:
    import torch
    import torch.nn.functional as F

    from membench.features.digits import build_net
    from membench.features.glyphs import render

    if cfg.steps <= 0 or cfg.batch_size < 2 or cfg.lr <= 0 or cfg.tau <= 0 or cfg.pool < cfg.batch_size:
        raise MembenchError("train_digits: steps, lr and tau must be positive, batch_size >= 2 and pool >= batch_size")
    t0, cpu0 = time.time(), time.process_time()
    pool = torch.from_numpy(render(cfg.pool, cfg.seed))
    t_render = time.time() - t0
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = build_net(width=cfg.width, dim=cfg.dim)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    losses: list[float] = []
    from membench.core.progress import track

    for step in track(range(cfg.steps), "train digits embedder", enabled=progress):
        x = pool[torch.randint(0, len(pool), (cfg.batch_size,), generator=gen)]
        z = F.normalize(net(torch.cat([augment(x, gen), augment(x, gen)])), dim=1)
        loss = info_nce(z, cfg.tau) + cfg.koleo * koleo(z)
        if not torch.isfinite(loss):
            raise MembenchError(f"train_digits: loss diverged at step {step}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval()
    import os

    record = {"config": asdict(cfg), "wall_time_s": round(time.time() - t0, 1), "render_time_s": round(t_render, 1),
              "cpu_time_s": round(time.process_time() - cpu0, 1), "load_average_1min": round(os.getloadavg()[0], 1),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "final_loss": float(np.mean(losses[-100:]))}
    return net, record


def evaluate(net: Any, noise: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Separation on the real digits (never seen in training): noisy copies of the 1,491 training-pool
    digits vs the 300 held-out digits, by max cosine similarity to the training pool."""
    import torch
    import torch.nn.functional as F

    from membench.data import load_dataset
    from membench.detectors.knn import knn_cosine
    from membench.analysis.roc import auc_bootstrap_ci, roc_auc, tpr_at_fpr

    ds = load_dataset("digits")
    rng = np.random.default_rng(seed)
    copies = np.clip(ds.images + noise * rng.standard_normal(ds.images.shape).astype(np.float32), -1, 1)
    with torch.inference_mode():
        emb = lambda a: F.normalize(net(torch.from_numpy(np.ascontiguousarray(a))), dim=1).numpy()  # noqa: E731
        ref, pos_q, neg_q = emb(ds.images), emb(copies), emb(ds.heldout)
    pos_s, pos_i = knn_cosine(pos_q, ref, k=1)
    neg_s, _ = knn_cosine(neg_q, ref, k=1)
    pos, neg = pos_s[:, 0], neg_s[:, 0]
    lo, hi = auc_bootstrap_ci(pos, neg)
    return {"dataset": ds.spec, "noise_std": noise, "n_pos": len(pos), "n_neg": len(neg),
            "auc": roc_auc(pos, neg), "auc_ci": [lo, hi], **tpr_at_fpr(pos, neg, 0.01),
            "copy_retrieval": float((pos_i[:, 0] == np.arange(len(ds))).mean()),
            "neg_similarity_p99": float(np.quantile(neg, 0.99))}


def card(out: Path, record: dict[str, Any], ev: dict[str, Any], sha: str, command: str) -> str:
    from membench.training.modelcard import render_card

    c = record["config"]
    summary = ("Copy-detection embedder for 8x8 gray digits (membench's offline embedder for the `digits-sim` detector).\n"
               f"A 5-layer CNN (conv 1-32-32-64-64, linear 1024-256-{c['dim']}), L2-normalized output.")
    fields = [
        ("training data", f"{c['pool']} synthetic glyphs (`membench.features.glyphs.render(n, seed={c['seed']})`: Pillow's "
                          "bundled font, random letters/digits/symbols and strokes, rendered like optdigits); **no sklearn "
                          "digit is used**"),
        ("objective", f"InfoNCE between two augmented views (tau = {c['tau']}) + {c['koleo']} x KoLeo entropy term "
                      "(SSCD-style, Pizzi et al. 2022)"),
        ("steps x batch", f"{c['steps']} x {c['batch_size']}, AdamW lr {c['lr']} cosine-decayed"),
        ("measured wall time", f"{record['wall_time_s']} s ({record['render_time_s']} s rendering; process CPU time "
                               f"{record.get('cpu_time_s', '?')} s, load average {record.get('load_average_1min', '?')} at "
                               f"the end) on CPU, {record['threads']} thread(s), torch {record['torch']}"),
        ("final loss (mean of last 100 steps)", f"{record['final_loss']:.4f}"),
        ("weights sha256 (`model.safetensors`)", f"`{sha}`"),
    ]
    separation = f"""Noisy copies (Gaussian, std {ev['noise_std']} in [-1, 1] units) of the {ev['n_pos']} training-pool digits of
`{ev['dataset']}` versus its {ev['n_neg']} held-out digits; score = max cosine similarity to the training pool.

| metric | value |
| --- | --- |
| ROC AUC | {ev['auc']:.4f} (95% bootstrap CI {ev['auc_ci'][0]:.4f}-{ev['auc_ci'][1]:.4f}) |
| TPR at 1% FPR | {ev['tpr']:.3f} (95% Wilson CI {ev['tpr_ci_low']:.3f}-{ev['tpr_ci_high']:.3f}), threshold {ev['threshold']:.4f} |
| copies whose nearest training digit is their source | {ev['copy_retrieval']:.3f} |
| 99th percentile of held-out max similarity | {ev['neg_similarity_p99']:.4f} |

`membench validate --detector digits-sim` measures it per model and task."""
    return render_card("digits-embedder", summary, fields, command,
                       [("Measured separation on the real digits (unseen in training)", separation)], config=c)


def build(out: str | Path, cfg: TrainConfig, force: bool = False, progress: bool = True, command: str = "") -> Path:
    from safetensors.torch import save_file

    from membench.core.io import atomic_directory
    from membench.core.io import file_sha256
    from membench.features.digits import CONFIG_FILE, FORMAT, WEIGHTS_FILE

    out = Path(out)
    if out.exists() and not force:
        raise MembenchError(f"{out} already exists (use --force to replace it)")
    net, record = train(cfg, progress=progress)
    ev = evaluate(net)
    with atomic_directory(out, force=force) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / WEIGHTS_FILE))
        meta = {"format": FORMAT, "arch": {"width": cfg.width, "dim": cfg.dim, "size": 8}, "training": record,
                "evaluation": ev}
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        (tmp / "README.md").write_text(card(out, record, ev, file_sha256(tmp / WEIGHTS_FILE), command))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m membench.features.train_digits", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="models/digits-embedder")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPUs are shared)")
    for f, v in asdict(TrainConfig()).items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{f: getattr(args, f) for f in asdict(TrainConfig())})
    defaults = asdict(TrainConfig())
    extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in asdict(cfg).items() if v != defaults[k])
    command = f"python -m membench.features.train_digits --out {args.out} --force --threads {args.threads}{extra}"
    try:
        out = build(args.out, cfg, force=args.force, progress=not args.quiet, command=command)
    except MembenchError as exc:
        print(f"membench: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    print(json.dumps(json.loads((out / "config.json").read_text())["evaluation"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
