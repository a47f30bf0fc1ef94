"""Train the digits classifier used as the offline quality feature extractor.

Trained on the digits pool without the default held-out split (``load_dataset("digits")``:
1,497 images, seed 0, holdout 300), so the held-out images that serve as the quality
reference are unseen by the extractor as by every generative model. The held-out accuracy
(with its 95% Wilson interval) goes into the model card.

    python -m membench.features.train_classifier --force     # or: membench train-classifier --force
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from membench.core.errors import MembenchError


@dataclass
class ClassifierTrainConfig:
    dataset: str = "digits"  # all non-held-out digits (seed 0, holdout 300)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift: int = 1  # random translation by up to this many pixels (augmentation)
    seed: int = 0


def digit_labels(images: np.ndarray) -> np.ndarray:
    """Labels of digits images, found by exact match in scikit-learn's pool (which is duplicate-free
    after membench's de-duplication), so no split logic is repeated here."""
    from sklearn.datasets import load_digits

    from membench.data.digits import digits_pool

    keep, pool = digits_pool()
    target = load_digits().target[keep]
    lookup = {img.tobytes(): int(t) for img, t in zip(pool.astype(np.float32), target)}
    labels = [lookup.get(np.asarray(img, dtype=np.float32).tobytes(), -1) for img in images]
    if -1 in labels:
        raise MembenchError("some images are not digits from scikit-learn's pool (labels unknown)")
    return np.asarray(labels, dtype=np.int64)


def _shift(x: Any, max_shift: int, gen: Any) -> Any:
    import torch
    import torch.nn.functional as F

    if max_shift <= 0:
        return x
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)  # background is -1
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None]).view(n, 1, h, 1).expand(n, 1, h, w + 2 * max_shift)
    out = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).view(n, 1, 1, w).expand(n, 1, h, w)
    return out.gather(3, cols)


def accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    import torch

    with torch.no_grad():
        pred = model(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).argmax(1).numpy()
    return int((pred == labels).sum()), len(labels)


def train_classifier(cfg: ClassifierTrainConfig, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    import torch

    from membench.data import load_dataset
    from membench.core.stats import wilson_interval
    from membench.features.digits_classifier import FEATURE_DIM, build_classifier

    if cfg.epochs <= 0 or cfg.batch_size <= 0 or cfg.lr <= 0:
        raise MembenchError("epochs, batch_size and lr must be positive")
    ds = load_dataset(cfg.dataset)
    if ds.heldout is None:
        raise MembenchError(f"{cfg.dataset}: the classifier needs a held-out split to report its accuracy")
    x_train, y_train = ds.images, digit_labels(ds.images)
    x_held, y_held = ds.heldout, digit_labels(ds.heldout)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(len(x_train) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train)
    t0 = time.time()
    loss_fn = torch.nn.CrossEntropyLoss()
    from membench.core.progress import task

    with task("train digits classifier (epochs)", total=cfg.epochs, enabled=progress) as bar:
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for start in range(0, len(xt), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                loss = loss_fn(model(_shift(xt[idx], cfg.shift, gen)), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            bar.advance()
            bar.update(loss=total / len(xt))
    model.eval()
    with torch.no_grad():  # fix the feature standardization on the training pool
        raw = model.raw_features(xt)
        model.feat_mean.copy_(raw.mean(0))
        model.feat_std.copy_(raw.std(0).clamp_min(1e-6))
    wall = time.time() - t0
    k_train, n_train = accuracy(model, x_train, y_train)
    k_held, n_held = accuracy(model, x_held, y_held)
    lo, hi = wilson_interval(k_held, n_held)
    record = {
        "config": asdict(cfg), "dataset": ds.spec, "dataset_fingerprint": ds.fingerprint(), "n_train": n_train,
        "n_heldout": n_held, "train_accuracy": k_train / n_train, "heldout_accuracy": k_held / n_held,
        "heldout_correct": k_held, "heldout_ci95": [lo, hi], "final_loss": total / len(xt),
        "wall_time_s": round(wall, 1), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "feature_dim": FEATURE_DIM,
    }
    return model.requires_grad_(False), record


def render_card(record: dict[str, Any], weights_sha256: str, command: str) -> str:
    from membench.training.modelcard import render_card as card

    lo, hi = record["heldout_ci95"]
    cfg = record["config"]
    summary = ("The offline feature extractor for membench's quality metrics (FID, KID, precision/recall) on\n"
               "the built-in digits: a small CNN (three 3x3 convolutions, a 32-d penultimate layer, 10 classes).\n"
               "Features are the 32-d penultimate layer before its ReLU, standardized per dimension with the\n"
               "mean and standard deviation over the training pool (fixed buffers in the weights). It is the feature\n"
               "extractor `digits-classifier` of membench's feature registry (`--quality-extractor digits`), seen by\n"
               "torch-fidelity as `membench-digits-classifier` (layer `features`).")
    fields = [
        ("training data", f"`{record['dataset']}`: all {record['n_train']} non-held-out digits (fingerprint "
                          f"`{record['dataset_fingerprint']}`), labels from scikit-learn"),
        ("held-out data", f"the default held-out split ({record['n_heldout']} images, seed {cfg['seed']}): never seen in "
                          "training"),
        ("held-out accuracy", f"{record['heldout_accuracy']:.4f} ({record['heldout_correct']}/{record['n_heldout']}; "
                              f"95% Wilson CI {lo:.4f}-{hi:.4f})"),
        ("training accuracy", f"{record['train_accuracy']:.4f}"),
        ("training", f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, AdamW lr {cfg['lr']} (one-cycle), weight decay "
                     f"{cfg['weight_decay']}, random shifts of up to {cfg['shift']} px, seed {cfg['seed']}"),
        ("final training loss", f"{record['final_loss']:.4f}"),
        ("measured wall time", f"{record['wall_time_s']} s on cpu ({record['threads']} CPU thread(s)), torch {record['torch']}"),
        ("weights", f"`model.safetensors`, sha256 `{weights_sha256}`"),
    ]
    note = ("Because the extractor was trained on the training pool, features of training images are\n"
            "slightly \"cleaner\" than those of unseen images: the held-out reference is the fair one.")
    return card("digits-classifier", summary, fields, command, [("Which reference", note)])


def build(out: str | Path | None = None, force: bool = False, epochs: int | None = None,
          progress: bool = False) -> tuple[Path, dict[str, Any]]:
    """Train, then write weights, config and card into ``out`` in one atomic rename."""
    from membench.core.io import atomic_directory
    from membench.core.io import file_sha256
    from membench.features.digits_classifier import WEIGHTS_FILE, resolve_dir, save_classifier

    from membench.core.workspace import Workspace, check_outside_package

    # The committed classifier is package data: rebuilding it there needs an explicit --out.
    target = resolve_dir(out) if out is not None else Workspace.resolve().models / "digits-classifier"
    if out is None:
        check_outside_package(target, "output folder", "--out")
    if target.exists() and not force:
        raise MembenchError(f"{target} already exists (use --force to replace it)")
    from membench.core.devices import torch_threads

    cfg = ClassifierTrainConfig(**({"epochs": epochs} if epochs is not None else {}))
    with torch_threads(1):  # a small net: one thread is fastest on the shared CPU, and reproducible
        model, record = train_classifier(cfg, progress=progress)
    command = "membench train-classifier --force" + (f" --epochs {epochs}" if epochs is not None else "")
    if out is not None:
        command += f" --out {out}"
    with atomic_directory(target, force=force) as tmp:
        save_classifier(model, tmp, {"feature_dim": record["feature_dim"], "n_classes": 10, "training": record})
        (tmp / "README.md").write_text(render_card(record, file_sha256(tmp / WEIGHTS_FILE), command))
    return target, record


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m membench.features.train_classifier", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="output folder (default: models/digits-classifier)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--epochs", type=int, default=None)
    args = p.parse_args(argv)
    try:
        target, rec = build(args.out, force=args.force, epochs=args.epochs, progress=True)
    except MembenchError as exc:
        print(f"membench: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}: held-out accuracy {rec['heldout_accuracy']:.4f} in {rec['wall_time_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
