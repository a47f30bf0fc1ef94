"""Search over the intermediate level of two-step consistency sampling (issue 14, item 7).

The committed `cd-student` (and any other consistency student given with --model) is sampled
with 2 steps, the second at each sigma in --sigmas (`consistency:steps=2,sigmas=S`), plus the
grid default (index 8 of 18, sigma 3.26) and 1 step, from the same 1,000 noises as its teacher.
Each image set is measured through the one measurement path (detectors and quality), paired
with the teacher. Writes <out>/cm_multistep.csv and the records under <out>/records.

    python scripts/cm_multistep_search.py --out benchmarks/cm-multistep
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cd-student")
    ap.add_argument("--sigmas", default="0.1,0.2,0.4,0.7,1.0,1.4,2.0,3.26,5.0,10.0")
    ap.add_argument("--detectors", default="l2ratio,carlini,nn-heldout")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/cm-multistep")
    args = ap.parse_args()

    import pandas as pd

    from membench.data import load_dataset
    from membench.models.checkpoints import load_denoiser
    from membench.models.specs import resolve_model
    from membench.studies.base import write_table
    from membench.studies.measure import Evaluator
    from membench.studies.pipeline import image_rows, sample, with_steps

    t0 = time.time()
    out = Path(args.out)
    spec = resolve_model(args.model)
    teacher_spec = resolve_model(spec.teacher)
    data = load_dataset(spec.dataset)
    ev = Evaluator(data, tuple(args.detectors.split(",")), "cpu", True, store=out, study="cm-multistep")
    student, _ = load_denoiser(spec.checkpoint, "cpu")
    # the teacher's samples from the sample cache when present (1,000 per seed), the first n of them
    from membench.models.samples import get_samples

    t_images = get_samples(teacher_spec, max(args.n, 1000), args.seed, "cpu").images[:args.n]
    rows, ref = image_rows(ev, {"model": "teacher", "sampler": teacher_spec.sampler, "sigma2": float("nan")}, t_images)
    samplers = [(with_steps(spec.sampler, 1), float("nan")), (with_steps(spec.sampler, 2), 3.26)]
    samplers += [(f"{with_steps(spec.sampler, 2)},sigmas={float(s)}", float(s)) for s in args.sigmas.split(",")]
    for sampler, sigma2 in samplers:
        images = sample(student, sampler, args.n, args.seed, data.shape, "cpu")
        r, _ = image_rows(ev, {"model": "student", "sampler": sampler, "sigma2": sigma2}, images, ref, args.seed)
        rows += r
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, "cm_multistep", table)
    print(f"wrote {out / 'cm_multistep.csv'} ({len(table)} rows) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
