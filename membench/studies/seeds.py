"""``membench study seeds``: is the CD student's memorization reduction real, over seeds and against nulls?

Work is split into resumable *parts*; each writes its output atomically (a checkpoint folder,
a sample file, or the detection records under ``<out>/records``) and a rerun skips every part
whose output exists, so the study survives interruptions and two processes can share one
output folder (``--set only=...`` gives each its parts). The tables are rebuilt from whatever
parts exist at the end of every run (``complete`` says which are missing).

Parts:

* ``teacher-s<t>``: an EDM teacher with the default configuration and training seed ``t``
  (``t = 0`` is the committed ``teacher``, not retrained); ``early_step`` keeps an
  early-stopped snapshot of the first trained seed (``teacher-s<t>-early<k>``).
* ``teacher-disjoint``: the same configuration on the *next* 64 digits (disjoint from the
  default 64; Kadkhodaie et al. 2024's disjoint-halves null, here two halves of 128).
* ``<method>-t<t>-d<d>``: the student of ``teacher-s<t>`` with distillation seed ``d``; saved
  EMA weights plus the raw weights and the bias-corrected EMA (``variants/``), and the same
  three at 3/4 of the iterations (for the plateau rule) from distillers that take snapshots
  (``cd``, ``ct``). ``method`` picks the distiller (``--set method=ct``); ``iterations`` sets its
  length option (``pd``: iterations per stage, so PD has no 3/4 point and no plateau verdict).
* Euler-k controls of ``teacher-s0`` (cheap): the teacher with k Euler steps; the one whose
  median distance to the teacher's own sample matches a student's is its matched-error control.

Every image set (1,000 samples from noise seed 0, paired across models) is measured by the
study's detectors and quality, and paired with ``teacher-s0`` (the headline teacher) and with
its own teacher: nearest-image agreement, distance to the teacher's sample.

Plateau rule (stated, applied per student and weight variant): a run has plateaued when (a)
the paired 95% interval (Newcombe) of the ``l2ratio`` difference between the 3/4 and the final
snapshot contains 0, and (b) the mean loss of the last m 100-iteration blocks of the loss curve
differs from the m blocks before them by less than 1.96 times the standard error of that
difference (over the block means), m = max(2, blocks // 8): the last eighth of the run, and
at least 200 iterations a side so that the standard error exists (1,500 iterations: 15 blocks,
m = 2).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from membench.core.errors import MembenchError
from membench.studies.base import Study, StudyContext, write_record, write_table
from membench.studies.pipeline import progress_note

VARIANTS = ("ema", "raw", "ema-corrected")


@dataclass
class SeedsStudy(Study):
    """CD student memorization over teacher and distillation seeds, with nulls and matched controls."""

    teacher: str = "teacher"  # the registered seed-0 teacher (its [train] section is the configuration)
    teacher_seeds: tuple = (0, 1, 2)
    distill_seeds: tuple = (0, 1)
    method: str = "cd"
    iterations: int = 1500
    early_step: int = 1500  # early-stopped teacher kept from the first trained seed (0: none)
    disjoint: bool = True
    euler_steps: tuple = (1, 2, 3, 4, 6, 8)
    detectors: tuple = ("l2ratio", "carlini")
    n_samples: int = 1000
    seed: int = 0
    quality: bool = True
    train_steps: int = 0  # 0: the registered teacher's steps (tests shorten it)
    only: tuple = ()  # run only these parts (names as above); the tables are rebuilt either way
    unet: str = "default"

    QUICK = {"teacher_seeds": (0, 1), "distill_seeds": (0,), "iterations": 4, "early_step": 2, "train_steps": 4,
             "euler_steps": (1, 2), "n_samples": 32, "method": "cd:batch_size=8", "unet": "tiny"}

    def check(self) -> None:
        if not self.teacher_seeds or 0 not in set(self.teacher_seeds):
            raise MembenchError("seeds: teacher_seeds must include 0 (the registered teacher)")
        if self.iterations < 4:
            raise MembenchError(f"seeds: iterations must be >= 4, got {self.iterations}")
        if self.n_samples < 2:
            raise MembenchError(f"seeds: n_samples must be >= 2, got {self.n_samples}")
        unknown = set(self.only) - set(self.parts())
        if unknown:  # checked before the output folder is made
            raise MembenchError(f"seeds: unknown part(s) {sorted(unknown)}; parts: {self.parts()}")

    # ------------------------------------------------------------------ parts

    def parts(self) -> list[str]:
        trained = [t for t in self.teacher_seeds if t != 0]
        names = [f"teacher-s{t}" for t in trained]
        if self.disjoint:
            names.append("teacher-disjoint")
        m = self.method_name()
        names += [f"{m}-t{t}-d{d}" for d in self.distill_seeds for t in self.teacher_seeds]
        return names

    def method_name(self) -> str:
        from membench.core.specs import parse_spec

        return parse_spec(self.method)[0]

    def run(self, out: Path, ctx: StudyContext) -> dict[str, pd.DataFrame]:
        started = time.time()
        note = progress_note(ctx.progress)
        out.mkdir(parents=True, exist_ok=True)
        wanted = set(self.only) if self.only else set(self.parts())
        timings = _read_json(out / "timings.json")
        for part in self.parts():
            if part not in wanted or (out / "parts" / part / "membench.json").exists():
                continue
            if part.startswith(f"{self.method_name()}-t") and not self._teacher_path(out, _teacher_of(part)).exists():
                note(f"{part}: its teacher is not trained yet; skipped")
                continue
            note(f"part {part}")
            t0 = time.time()
            self._run_part(part, out, ctx)
            timings[part] = round(time.time() - t0, 1)
            from membench.core.io import atomic_write_json

            atomic_write_json(out / "timings.json", {**_read_json(out / "timings.json"), part: timings[part]})
        tables = self.tables(out, ctx, note)
        write_record(out, self, ctx, started, {"parts_done": tables["parts"]["done"].sum().item(),
                                               "parts": self.parts(), "timings_s": _read_json(out / "timings.json")})
        return tables

    def _teacher_path(self, out: Path, t: int) -> Path:
        if t == 0:
            from membench.models.specs import resolve_model

            return Path(resolve_model(self.teacher).checkpoint) / "membench.json"
        return out / "parts" / f"teacher-s{t}" / "membench.json"

    def _train_cfg(self, seed: int, dataset: str | None = None) -> Any:
        from membench.models.specs import resolve_model
        from membench.studies.pipeline import unet_preset
        from membench.training.teacher import TeacherTrainConfig

        spec = resolve_model(self.teacher)
        opts = dict(spec.train or {})
        opts.setdefault("dataset", spec.dataset)
        opts["seed"] = int(seed)
        if dataset:
            opts["dataset"] = dataset
        if self.train_steps:
            opts["steps"] = int(self.train_steps)
        if self.unet != "default":
            opts["unet"] = unet_preset(self.unet)
        return TeacherTrainConfig.from_dict(opts)

    def _run_part(self, part: str, out: Path, ctx: StudyContext) -> None:
        from membench.models.checkpoints import save_denoiser

        parts = out / "parts"
        if part.startswith("teacher-"):
            if part == "teacher-disjoint":
                dataset = str(self._disjoint_file(out))
                cfg = self._train_cfg(0, dataset)
            else:
                cfg = self._train_cfg(int(part.removeprefix("teacher-s")))
            early = int(self.early_step) if (part != "teacher-disjoint" and self.early_step
                                             and part == f"teacher-s{self._first_trained()}") else 0
            snaps: dict[int, Any] = {}
            from membench.training.teacher import train_teacher
            import copy

            if early:
                cfg.snapshot_every = early

            def keep(step: int, ema: Any) -> None:
                if step == early:
                    snaps[step] = copy.deepcopy(ema).eval()

            model, record = train_teacher(cfg, device=ctx.device, progress=ctx.progress, on_snapshot=keep)
            shape = list(model.unet.config.in_channels for _ in range(1)) + [model.unet.config.sample_size] * 2
            if early in snaps:
                save_denoiser(snaps[early], parts / f"{part}-early{early}",
                              {"role": "teacher", "name": f"{part}-early{early}", "dataset": cfg.dataset,
                               "image_shape": shape, "training": {**record, "stopped_at": early}}, force=True)
            save_denoiser(model, parts / part, {"role": "teacher", "name": part, "dataset": cfg.dataset,
                                                "image_shape": shape, "training": record}, force=True)
            return
        # a student: <method>-t<t>-d<d>
        from membench.core.specs import format_spec, parse_spec
        from membench.data import load_dataset
        from membench.models.checkpoints import load_denoiser
        from membench.training.distillers.base import DistillContext, make_distiller

        t, d = _teacher_of(part), int(part.rsplit("-d", 1)[1])
        teacher, meta = load_denoiser(self._teacher_path(out, t).parent, ctx.device)
        data = load_dataset(meta.get("dataset") or "digits:n=64")
        name, opts = parse_spec(self.method)
        from membench.training.distillers import DISTILLERS

        opts.update({"seed": d, DISTILLERS.get(name).length_option: int(self.iterations)})  # pd: per stage
        distiller = make_distiller(format_spec(name, opts))
        early_k = (3 * int(self.iterations)) // 4
        snaps: dict[str, Any] = {}

        def keep(k: int, variants: dict[str, Any]) -> None:
            for vname, model in variants.items():
                snaps[f"{vname}@{k}"] = model

        def keep_ema(k: int, model: Any) -> None:
            import copy

            snaps[f"ema@{k}"] = copy.deepcopy(model).eval()

        dctx = DistillContext(device=ctx.device, progress=ctx.progress, teacher_name=f"teacher-s{t}",
                              snapshot_at=(early_k,), on_snapshot=keep_ema, on_snapshot_variants=keep)
        result = distiller.distill(teacher, data, dctx)
        variants = {**result.variants, **snaps}
        save_denoiser(result.student.eval(), parts / part,
                      {"role": "student", "name": part, "teacher": f"teacher-s{t}", "method": name,
                       "dataset": data.spec, "image_shape": list(data.shape), "sampler": result.sampler,
                       "training": result.record}, force=True, variants=variants)

    def _first_trained(self) -> int | None:
        trained = [t for t in self.teacher_seeds if t != 0]
        return trained[0] if trained else None

    def _disjoint_file(self, out: Path) -> Path:
        """The 64 digits after the default 64 (same held-out split), as an .npz dataset file."""
        from membench.core.io import atomic_write_bytes
        from membench.data import load_dataset
        import io

        base = load_dataset(self._train_cfg(0).dataset)
        n = len(base)
        bigger = load_dataset(base.spec.replace(f"n={n}", f"n={2 * n}"))
        if not np.array_equal(bigger.images[:n], base.images):
            raise MembenchError(f"seeds: {base.spec} is not the first half of {bigger.spec}; cannot build the disjoint set")
        path = out / "parts" / f"disjoint-{n}.npz"
        if not path.exists():
            buf = io.BytesIO()
            np.savez(buf, images=bigger.images[n:], heldout=bigger.heldout)
            atomic_write_bytes(path, buf.getvalue())
        return path

    # ------------------------------------------------------------------ measurement and tables

    def image_sets(self, out: Path) -> list[dict[str, Any]]:
        """Every image set the finished parts allow: (label, checkpoint folder, sampler, teacher seed)."""
        from membench.models.specs import resolve_model

        spec0 = resolve_model(self.teacher)
        parts = out / "parts"
        sets = [{"model": "teacher-s0", "kind": "teacher", "teacher_seed": 0, "path": spec0.checkpoint,
                 "sampler": spec0.sampler}]
        sets += [{"model": f"teacher-s0/euler{k}", "kind": "euler-control", "teacher_seed": 0,
                  "path": spec0.checkpoint, "sampler": f"euler:steps={int(k)},to_zero=false"}
                 for k in self.euler_steps]
        for t in self.teacher_seeds:
            if t != 0 and (parts / f"teacher-s{t}" / "membench.json").exists():
                sets.append({"model": f"teacher-s{t}", "kind": "teacher", "teacher_seed": t,
                             "path": str(parts / f"teacher-s{t}"), "sampler": spec0.sampler})
        for extra, kind in [(f"teacher-s{self._first_trained()}-early{self.early_step}", "early-stopped teacher"),
                            ("teacher-disjoint", "disjoint-data teacher")]:
            if (parts / extra / "membench.json").exists():
                sets.append({"model": extra, "kind": kind, "teacher_seed": -1, "path": str(parts / extra),
                             "sampler": spec0.sampler})
        m = self.method_name()
        early_k = (3 * int(self.iterations)) // 4
        for d in self.distill_seeds:
            for t in self.teacher_seeds:
                folder = parts / f"{m}-t{t}-d{d}"
                if not (folder / "membench.json").exists():
                    continue
                sampler = json.loads((folder / "membench.json").read_text())["sampler"]
                for v in VARIANTS:
                    for k, sub in [(self.iterations, None if v == "ema" else f"variants/{v}"),
                                   (early_k, f"variants/{v}@{early_k}")]:
                        if sub and not (folder / sub).exists():
                            continue  # a distiller without snapshots (pd): no 3/4 point, no plateau verdict
                        sets.append({"model": f"{m}-t{t}-d{d}", "kind": "student", "teacher_seed": t,
                                     "distill_seed": d, "variant": v, "iterations": k,
                                     "path": str(folder / sub) if sub else str(folder), "sampler": sampler})
        return sets

    def tables(self, out: Path, ctx: StudyContext, note: Any) -> dict[str, pd.DataFrame]:
        from membench.data import load_dataset
        from membench.models.specs import resolve_model
        from membench.studies.measure import Evaluator, Reference, memorization_columns, paired_columns

        data = load_dataset(resolve_model(self.teacher).dataset)
        ev = Evaluator(data, self.detectors, ctx.device, self.quality, store=out, study=self.registry_name)
        refs: dict[int, Reference] = {}
        by_set: dict[str, dict[str, Any]] = {}  # image set label -> detector -> record
        rows = []
        for s in self.image_sets(out):
            images = self._samples(out, s, data.shape, ctx)
            labels = {k: v for k, v in s.items() if k not in ("path",)}
            own = refs.get(int(s["teacher_seed"])) if s["kind"] in ("student", "euler-control") else None
            head = refs.get(0) if s["model"] != "teacher-s0" else None
            detections, quality_rec = ev.measure(images, {**labels, "model": s["model"] + _suffix(s)}, self.seed, None)
            quality = ev.quality_columns(images, quality_rec)
            by_set[s["model"] + _suffix(s)] = detections
            for det, rec in detections.items():
                row = {**labels, **memorization_columns(rec), **quality}
                for tag, ref in (("vs_s0", head), ("vs_own", own)):
                    if ref is not None and det in ref.records:
                        row.update({f"{k}_{tag}": v for k, v in paired_columns(rec, ref.records[det], images,
                                                                               ref.images).items()
                                    if k in ("nearest_agreement", "agree_ci_low", "agree_ci_high",
                                             "median_l2_to_teacher_sample", "diff_vs_teacher", "diff_ci_low",
                                             "diff_ci_high")})
                rows.append(row)
            if s["kind"] == "teacher":
                refs[int(s["teacher_seed"])] = Reference(s["model"], detections, images)
        table = pd.DataFrame(rows)
        done = [(p, (out / "parts" / p / "membench.json").exists()) for p in self.parts()]
        parts = pd.DataFrame(done, columns=["part", "done"])
        timings = _read_json(out / "timings.json")
        parts["seconds"] = [timings.get(p, float("nan")) for p, _ in done]
        write_table(out, "seeds", table)
        write_table(out, "parts", parts)
        summary = summarize(table, self.iterations, out, by_set)
        write_table(out, "summary", summary)
        return {"seeds": table, "parts": parts, "summary": summary}

    def _samples(self, out: Path, s: dict[str, Any], shape: tuple[int, int, int], ctx: StudyContext) -> np.ndarray:
        """The image set's samples, generated once and kept as a compressed file (atomically)."""
        from membench.core.io import atomic_write_bytes
        from membench.models.checkpoints import load_denoiser
        from membench.studies.pipeline import sample
        import io

        key = (s["model"] + _suffix(s)).replace("/", "_").replace("@", "_at")
        path = out / "samples" / f"{key}.npz"
        if path.exists():
            with np.load(path) as z:
                return z["images"]
        model, _ = load_denoiser(s["path"], ctx.device)
        images = sample(model, s["sampler"], self.n_samples, self.seed, shape, ctx.device)
        buf = io.BytesIO()
        np.savez_compressed(buf, images=images.astype(np.float32))
        atomic_write_bytes(path, buf.getvalue())
        return images


def _suffix(s: dict[str, Any]) -> str:
    return f"/{s['variant']}@{s['iterations']}" if s.get("kind") == "student" else ""


def _teacher_of(part: str) -> int:
    return int(part.split("-t", 1)[1].split("-d", 1)[0])


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def summarize(table: pd.DataFrame, iterations: int, out: Path, by_set: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per (kind, variant, iterations, detector): mean over seeds with a t interval over seeds,
    beside the per-seed values; and the plateau verdict per student run."""
    if table.empty:
        return pd.DataFrame()
    rows = []
    keys = ["kind", "variant", "iterations", "detector"]
    t = table.copy()
    for k in keys:
        if k not in t.columns:
            t[k] = np.nan
    t = t[t["kind"].isin(["student", "teacher"])]
    for key, grp in t.groupby([t[k].astype(str) for k in keys], dropna=False):
        for col in ("memorized", "nearest_agreement_vs_own", "median_l2_to_teacher_sample_vs_own", "fid_heldout"):
            if col not in grp.columns:
                continue
            vals = grp[col].dropna().to_numpy(dtype=float)
            if len(vals) == 0:
                continue
            m = float(vals.mean())
            if len(vals) > 1:
                from scipy.stats import t as student_t

                half = float(student_t.ppf(0.975, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals)))
            else:
                half = float("nan")
            rows.append({**dict(zip(keys, key)), "metric": col, "n_runs": len(vals), "mean": m,
                         "seeds_ci_low": m - half, "seeds_ci_high": m + half,
                         "values": " ".join(f"{v:.4g}" for v in vals),
                         "runs": " ".join(f"t{int(a)}d{int(b)}" if not (pd.isna(a) or pd.isna(b)) else f"t{int(a)}"
                                          for a, b in zip(grp.loc[grp[col].notna(), "teacher_seed"],
                                                          grp.loc[grp[col].notna(), "distill_seed"]
                                                          if "distill_seed" in grp else [np.nan] * len(vals)))})
    summary = pd.DataFrame(rows)
    plateau = plateau_rows(table, iterations, out, by_set)
    return pd.concat([summary, plateau], ignore_index=True) if not plateau.empty else summary


def plateau_rows(table: pd.DataFrame, iterations: int, out: Path, by_set: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The plateau rule (module doc) for each student run and weight variant."""
    from membench.analysis.effect import compare, pair_arrays

    if "variant" not in table.columns:
        return pd.DataFrame()
    early_k = (3 * int(iterations)) // 4
    rows = []
    students = table[(table["kind"] == "student") & (table["detector"] == "l2ratio")]
    for (model, variant), _ in students.groupby(["model", "variant"]):
        final = by_set.get(f"{model}/{variant}@{iterations}", {}).get("l2ratio")
        early = by_set.get(f"{model}/{variant}@{early_k}", {}).get("l2ratio")
        row = {"kind": "plateau", "variant": variant, "iterations": iterations, "detector": "l2ratio",
               "metric": "plateau", "runs": model}
        if final is not None and early is not None:
            st = compare(pair_arrays(early.load_arrays(), final.load_arrays(), False))
            row.update({"mean": st["diff"], "seeds_ci_low": st["diff_ci_low"], "seeds_ci_high": st["diff_ci_high"],
                        "l2ratio_plateau": bool(st["diff_ci_low"] <= 0 <= st["diff_ci_high"])})
        meta = out / "parts" / model / "membench.json"
        if meta.exists():
            curve = json.loads(meta.read_text()).get("training", {}).get("loss_curve_per_100") or []
            row["loss_plateau"] = loss_plateau(curve)
        rows.append(row)
    return pd.DataFrame(rows)


def loss_plateau(curve: list[float]) -> bool | None:
    """The last m block means against the m before them, m = max(2, blocks // 8) (module doc)."""
    n = max(2, len(curve) // 8)
    if len(curve) < 2 * n:
        return None
    a, b = np.asarray(curve[-2 * n:-n]), np.asarray(curve[-n:])
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return bool(abs(b.mean() - a.mean()) < 1.96 * se)
