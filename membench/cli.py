"""Command line: parses, calls one library function, prints. Heavy imports happen inside commands."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from membench.core.errors import MembenchError
from membench.core.registry import KIND_ALIASES, KINDS

LIST_KINDS = (*KINDS, *KIND_ALIASES)  # every registry kind, and `embedders` for `features`


RESULTS_HELP = "results folder; overrides the default <workspace>/results"
CACHE_HELP = "sample/feature/weights cache; overrides the default $MEMBENCH_CACHE or ~/.cache/membench"
# Commands whose results go to a subfolder of <workspace>/results by default.
RESULTS_SUBDIR = {"check": "check"}


# Exit codes (docs/guide.md, "Errors and guarantees"); `check` adds EXIT_REGRESSED (3).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEBUG_HELP = "show the full traceback of an error (default: one line)"


def _add_workspace(p: argparse.ArgumentParser) -> None:
    # --debug is global; accepted after the command too (SUPPRESS: the subcommand does not reset it)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    p.add_argument("--workspace", default=None, metavar="DIR",
                   help="folder for everything membench writes (results, models, registry entries, studies); "
                        "default: $MEMBENCH_HOME, else ./membench-workspace")


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="table", choices=("table", "csv", "json", "markdown"),
                   help="table (default: for a person; plain ASCII when not a terminal), or only the data as csv, "
                        "json or markdown on standard output")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_workspace(p)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (and exit 2, EXIT_USAGE)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"membench: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="membench", description="Memorization benchmark for diffusion models and their distilled students.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list registered models, detectors, distillers, ...")
    p.add_argument("kind", choices=LIST_KINDS)
    _add_workspace(p)  # its registry/ adds models and datasets

    p = sub.add_parser("run", help="evaluate models x detectors and rebuild the leaderboard")
    p.add_argument("--model", "--models", dest="models", default="teacher", help="NAME[,NAME...] or all (default: teacher)")
    p.add_argument("--detector", "--detectors", dest="detectors", default="l2ratio", help="NAME[:k=v][,NAME...] or all (default: l2ratio)")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="noise seed; every model gets the same noises for a seed")
    p.add_argument("--results-dir", default=None, help=RESULTS_HELP)
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    p.add_argument("--force", action="store_true", help="recompute pairs that already have a result file")
    p.add_argument("--no-quality", dest="quality", action="store_false",
                   help="skip the sample-quality metrics (FID, KID, precision/recall)")
    p.add_argument("--quality-extractor", default="digits",
                   help="quality features: digits (default: the digits classifier, offline), inception-v3[:weights=FILE], "
                        "or any extractor of `membench list features`")
    p.add_argument("--executor", default="local",
                   help="where samples are made: local (this process, default) or ray (pip install 'membench[ray]')")
    p.add_argument("--address", default=None,
                   help="with --executor ray: auto (the cluster of `ray start --head` here), HOST:PORT or ray://HOST:PORT; "
                        "default: a new Ray instance on this machine")
    _add_format(p)
    _add_common(p)

    p = sub.add_parser("detect", help="run detectors on samples made elsewhere (.npz/.npy or image folder)")
    p.add_argument("--samples", required=True, action="append",
                   help=".npz/.npy file or image folder; give it again for more sets: each later set is compared "
                        "with the first, noise by noise (needs --noise-index for each)")
    p.add_argument("--noise-index", action="append", default=None, metavar="FILE_OR_COLUMN",
                   help="which noise made each image, once per --samples, in order: a CSV (columns file or sample, "
                        "and noise_index; FILE.csv:COLUMN names another column), an .npz with the array noise_index "
                        "(FILE.npz:KEY), an .npy, or the name of an array in the samples' own .npz")
    p.add_argument("--train", required=True, help="dataset name (digits:n=64, a registry entry) or path (.npz/.npy/image folder)")
    p.add_argument("--detector", "--detectors", dest="detectors", default="l2ratio")
    p.add_argument("--per-sample", default=None,
                   help="write per-sample scores to this CSV file (with each image's file name and noise index)")
    p.add_argument("--results-dir", default=None, help=RESULTS_HELP + "; the records join the leaderboard")
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    _add_format(p)
    _add_common(p)

    p = sub.add_parser("validate", help="measure how well detectors separate memorized from novel images (AUC table)")
    p.add_argument("--detector", "--detectors", dest="detectors", default="all", help="NAME[:k=v][,NAME...] or all (default: all)")
    p.add_argument("--model", "--models", dest="models", default="teacher", help="model(s) whose training set and samples are used (default: teacher)")
    p.add_argument("--tasks", default="copies-noise,copies-shift,copies-flip,generated",
                   help="comma-separated: copies-noise, copies-shift, copies-flip, generated")
    p.add_argument("--n-samples", type=int, default=1000, help="generated samples (task 'generated')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian perturbation (task copies-noise)")
    p.add_argument("--results-dir", default=None, help=RESULTS_HELP)
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    _add_common(p)

    p = sub.add_parser("train", help="train a registered teacher from its registry entry")
    p.add_argument("--model", required=True, help="registry name of the teacher (its [train] section is the config)")
    p.add_argument("--out", default=None,
                   help="checkpoint folder (default: the entry's checkpoint path, or <workspace>/models/<name> for a "
                        "built-in entry, whose committed checkpoint is never replaced unless --out names it)")
    p.add_argument("--force", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    _add_common(p)

    p = sub.add_parser("distill", help="distil a registered teacher into a student (writes checkpoint + registry entry)")
    p.add_argument("--teacher", required=True, help="registry name of the teacher")
    p.add_argument("--method", required=True, help="distiller NAME[:k=v,...] (membench list distillers)")
    p.add_argument("--out", default=None, help="checkpoint folder (default: <workspace>/models/<name>)")
    p.add_argument("--registry", default=None, metavar="DIR",
                   help="registry folder the student's entry goes to (default: <workspace>/registry)")
    p.add_argument("--name", default=None, help="registry name of the student (default: <method>-student)")
    p.add_argument("--force", action="store_true", help="replace an existing checkpoint/entry")
    p.add_argument("--eval-samples", type=int, default=1000, help="samples for the model card's l2ratio (0: skip)")
    _add_common(p)

    p = sub.add_parser("import", help="register a diffusers checkpoint (folder or hub id) as a model")
    p.add_argument("source", metavar="PATH_OR_HUB_ID", help="a diffusers folder (pipeline, or unet/ + scheduler/) or org/name")
    p.add_argument("--name", required=True, help="registry name of the model")
    p.add_argument("--train", required=True, help="the dataset it was trained on (the detectors' reference)")
    p.add_argument("--role", default=None, choices=("teacher", "student", "control"),
                   help="default: teacher, or student when --teacher is given")
    p.add_argument("--teacher", default=None, help="students and controls: the registered teacher")
    p.add_argument("--method", default=None, help="students: how it was distilled (cd, ct, pd, ...)")
    p.add_argument("--sampler", default=None, help="default: ddim:steps=50 (DDPM family), heun:steps=18 (EDM), "
                   "consistency:steps=1 (consistency models)")
    p.add_argument("--parameterization", default=None,
                   help="cm_edm, edm, consistency, epsilon, v_prediction or sample; needed only when the configs "
                        "do not say")
    p.add_argument("--revision", default=None, help="hub ids: the revision")
    p.add_argument("--force", action="store_true", help="replace an entry of the same name")
    _add_workspace(p)

    p = sub.add_parser("quality", help="FID, KID, precision/recall of samples made elsewhere vs held-out/training images")
    p.add_argument("--samples", required=True, help=".npz/.npy file or image folder")
    p.add_argument("--train", required=True, help="dataset whose held-out and training images are the references")
    p.add_argument("--reference", default="heldout,train", help="heldout, train or both (default: heldout,train)")
    p.add_argument("--metrics", default="fid,kid,prc", help="any of fid, kid, prc (default: all)")
    p.add_argument("--extractor", default="digits", help="digits (default: the digits classifier, offline), "
                   "inception-v3[:weights=FILE], or any extractor of `membench list features`")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    _add_common(p)

    p = sub.add_parser("train-classifier", help="rebuild the digits classifier (the offline quality feature extractor)")
    p.add_argument("--out", default=None, help="output folder (default: <workspace>/models/digits-classifier; "
                   "the committed one is rebuilt with --out membench/assets/models/digits-classifier)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--force", action="store_true", help="replace an existing classifier")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_workspace(p)
    p = sub.add_parser("report", help="write the HTML report (+ CSV/Markdown) from the result files")
    p.add_argument("--results-dir", default=None, help=RESULTS_HELP)
    p.add_argument("--out", default=None, help="output folder (default: <results-dir>/report)")
    p.add_argument("--cache-dir", default=None, help="sample cache the runs used (samples are regenerated if missing); "
                   "overrides the default $MEMBENCH_CACHE or ~/.cache/membench")
    p.add_argument("--top", type=int, default=8, help="rows per image grid (most memorized samples)")
    _add_common(p)

    p = sub.add_parser("check", help="recompute a baseline leaderboard's rows; exit 3 if memorization rose or quality fell")
    p.add_argument("--baseline", required=True, help="baseline JSON (written by `membench baseline`)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="allowed rise of the memorized fraction (absolute; default 0.02): a regression is a rise "
                        "whose 95%% interval lies entirely above it")
    p.add_argument("--quality-tolerance", type=float, default=0.10,
                   help="allowed relative worsening of quality columns (default 0.10)")
    p.add_argument("--n-samples", type=int, default=None, help="samples per row (default: the baseline's; fewer is fine)")
    p.add_argument("--model", "--models", dest="models", default=None, help="only these baseline models")
    p.add_argument("--detector", "--detectors", dest="detectors", default=None, help="only these baseline detectors")
    p.add_argument("--results-dir", default=None, help="folder of the recomputed runs; overrides the default "
                   "<workspace>/results/check")
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    _add_common(p)

    p = sub.add_parser("baseline", help="run models x detectors and write the rows as a baseline file for `check`")
    p.add_argument("--out", required=True, help="baseline JSON to write, e.g. benchmarks/baseline.json")
    p.add_argument("--model", "--models", dest="models", default="all")
    p.add_argument("--detector", "--detectors", dest="detectors", default="all")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", default=None, help=RESULTS_HELP)
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    _add_common(p)
    # scientific studies (membench/studies); those tagged "command" in STUDIES (sweep, rfnn) are shorthands
    p = sub.add_parser("weights", help="published weights of SSCD, CLIP, Inception: list them, fetch one into $MEMBENCH_CACHE")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    _add_workspace(wsub.add_parser("list", help="each file, its path under $MEMBENCH_CACHE, present/absent, its checksum"))
    q = wsub.add_parser("fetch", help="download NAME, verified against the checksum recorded in membench")
    q.add_argument("name", help="a name of `membench weights list`")
    q.add_argument("--allow-unverified", action="store_true",
                   help="accept a file whose publisher gives no checksum (its sha256 is printed)")
    _add_workspace(q)  # its registry/weights adds entries

    p = sub.add_parser("study", help="run a scientific study (membench list studies) and write its tables and figures")
    p.add_argument("name", help="study name (membench list studies)")
    _add_study_args(p)
    for alias in _study_commands():
        p = sub.add_parser(alias, help=f"same as `membench study {alias}`")
        _add_study_args(p)
    return parser


def _study_commands() -> list[str]:
    """Studies that are top-level commands too: tagged ``command`` in the studies registry."""
    from membench.studies import STUDIES

    return STUDIES.names(tag="command")


def _add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a study option (lists: comma-separated), e.g. --set sizes=16,64,256")
    p.add_argument("--quick", action="store_true", help="the seconds-scale configuration (smoke test, not science)")
    p.add_argument("--out", default=None, help="output folder (default: <workspace>/studies/<study>, or "
                   "<study>-quick; the committed outputs are rewritten only with --out benchmarks/<study>)")
    _add_common(p)


def cmd_list(args: argparse.Namespace) -> int:
    import warnings

    from membench.core.registry import registry

    reg = registry(args.kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plugin problems are printed below, once
        rows, problems = reg.listing(), reg.plugin_errors()
    for name, text in rows:
        print(f"{name:20s} {text}".rstrip())
    for msg in problems:
        print(f"warning: {msg}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .api import run
    from .report.terminal import run_effect, show

    t0 = time.time()
    df = run(models=args.models, detectors=args.detectors, n_samples=args.n_samples, seed=args.seed,
             device=args.device, results_dir=args.results_dir, cache_dir=args.cache_dir,
             progress=not args.quiet, force=args.force, quality=args.quality,
             quality_extractor=args.quality_extractor, executor=args.executor, address=args.address)
    footer = [f"leaderboard: {os.path.join(args.results_dir, 'leaderboard.csv')} (.md); {time.time() - t0:.1f}s"]
    show(args.format, df, run_effect(args.results_dir, df), footer=footer, quiet=args.quiet)
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .api import detect
    from .report.terminal import detect_effect, per_sample_table, show
    from .core.io import atomic_write_text

    if args.noise_index and len(args.noise_index) != len(args.samples):
        raise MembenchError(f"{len(args.noise_index)} --noise-index for {len(args.samples)} --samples: "
                            "give one per sample set, in the same order")
    if args.per_sample:
        from .core.paths import check_output_file

        check_output_file(args.per_sample, "--per-sample file", "--per-sample")
    many = len(args.samples) > 1
    df, records = detect(args.samples if many else args.samples[0], args.train, args.detectors,
                         device=args.device, progress=not args.quiet, results_dir=args.results_dir,
                         cache_dir=args.cache_dir,
                         noise_index=args.noise_index if many else (args.noise_index or [None])[0])
    recs = list(records.values())
    show(args.format, df, detect_effect(recs), quiet=args.quiet)
    if args.per_sample:
        atomic_write_text(args.per_sample, per_sample_table(recs).to_csv(index=False))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from membench.analysis.validate import format_table, validate

    t0 = time.time()
    df = validate(models=args.models, detectors=args.detectors, tasks=args.tasks, n_samples=args.n_samples,
                  seed=args.seed, noise=args.noise, device=args.device, results_dir=args.results_dir,
                  cache_dir=args.cache_dir, progress=not args.quiet)
    print(format_table(df).to_markdown(index=False))
    print(f"\nvalidation: {os.path.join(args.results_dir, 'validation.csv')} (.md); {time.time() - t0:.1f}s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from membench.models.specs import resolve_model
    from membench.training.train import train_from_registry

    out = train_from_registry(args.model, out=args.out, force=args.force, device=args.device,
                              steps=args.steps, progress=not args.quiet)
    print(f"wrote {out}")
    spec = resolve_model(args.model)
    if Path(spec.checkpoint).resolve() != out.resolve():
        print(f"note: the entry {spec.entry_path} still names {spec.checkpoint}; to measure the new checkpoint, "
              f"copy the entry under a new name into {args.workspace / 'registry' / 'models'} with its checkpoint "
              f"set to {out.resolve()}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from membench.training.distill import distill_from_registry

    ckpt, entry = distill_from_registry(args.teacher, args.method, out=args.out, name=args.name, force=args.force,
                                        device=args.device, progress=not args.quiet, eval_samples=args.eval_samples,
                                        registry=args.registry)
    print(f"wrote {ckpt} and {entry}")
    print(f"measure it with: membench run --model {entry.stem} --workspace {args.workspace}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from membench.models.importing import import_model

    info = import_model(args.source, args.name, args.train, role=args.role, teacher=args.teacher, method=args.method,
                        sampler=args.sampler, parameterization=args.parameterization, revision=args.revision,
                        force=args.force)
    print(f"{info['name']}: {info['role']}, {info['format']} {info['pipeline'] or ''} scheduler={info['scheduler']}")
    print(f"  parameterization {info['parameterization']} (from {info['parameterization_from']})")
    print(f"  resolution {info['resolution']}, channels {info['channels']}, classes {info['classes']}, "
          f"sampler {info['sampler']} (default {info['default_sampler']})")
    print(f"wrote {info['entry']}")
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from .api import quality

    df, _ = quality(args.samples, args.train, extractor=args.extractor, references=args.reference,
                    metrics=args.metrics, kid_subsets=args.kid_subsets, device=args.device, cache_dir=args.cache_dir)
    view = df.drop(columns=[c for c in df.columns if c.endswith(("_ci_low", "_ci_high"))])
    for frac in ("precision", "recall"):
        if frac in df:
            view[frac] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                          zip(df[frac], df[f"{frac}_ci_low"], df[f"{frac}_ci_high"])]
    print(view.to_markdown(index=False, floatfmt=".4g"))
    print("\nheldout: unseen images (fair reference); train: the training images (rewards memorization)")
    return 0


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from membench.features.train_classifier import build

    # The library default is the committed classifier in the package; the CLI writes to the workspace.
    out = args.out or args.workspace / "models" / "digits-classifier"
    target, rec = build(out, force=args.force, epochs=args.epochs, progress=not args.quiet)
    lo, hi = rec["heldout_ci95"]
    print(f"wrote {target}: held-out accuracy {rec['heldout_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}), "
          f"{rec['wall_time_s']} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from membench.core.devices import resolve_device
    from membench.report import build_report

    rep = build_report(args.results_dir, out_dir=args.out, cache_dir=args.cache_dir,
                       device=resolve_device(args.device), top=args.top,  # a bad device: one line, before any work
                       progress=not args.quiet)
    for msg in rep.problems:
        print(f"membench: warning: skipped {msg}", file=sys.stderr)
    print(f"wrote {rep.html} ({len(rep.leaderboard)} leaderboard rows, {len(rep.effect)} student/control rows)")
    for f in rep.files[1:]:
        print(f"wrote {f}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from membench.analysis.check import EXIT_REGRESSED, check

    res = check(args.baseline, n_samples=args.n_samples, tolerance=args.tolerance,
                quality_tolerance=args.quality_tolerance, models=args.models, detectors=args.detectors,
                results_dir=args.results_dir, cache_dir=args.cache_dir, device=args.device, progress=not args.quiet)
    print(res.table[["row", "metric", "verdict", "detail"]].to_markdown(index=False))
    for note in res.notes:
        print(f"note: {note}")
    for msg in res.regressions:
        print(f"REGRESSED: {msg}")
    for msg in res.unchecked:
        print(f"NOT CHECKED: {msg}")
    if not res.passed:
        print(f"membench check: failed against {args.baseline}: {len(res.regressions)} regression(s), "
              f"{len(res.unchecked)} row(s) not recomputed")
        return EXIT_REGRESSED
    print(f"membench check: passed ({len(res.table)} checks against {args.baseline})")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from membench.analysis.check import write_baseline

    command = ("membench baseline --out " + args.out + f" --model {args.models} --detector {args.detectors} "
               f"--n-samples {args.n_samples} --seed {args.seed}")
    data = write_baseline(args.out, models=args.models, detectors=args.detectors, n_samples=args.n_samples,
                          seed=args.seed, results_dir=args.results_dir, cache_dir=args.cache_dir, device=args.device,
                          progress=not args.quiet, command=command)
    print(f"wrote {args.out} ({len(data['rows'])} rows)")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from membench.weights.cli import fetch_command, list_command

    return fetch_command(args.name, args.allow_unverified) if args.weights_command == "fetch" else list_command()


def cmd_study(args: argparse.Namespace) -> int:
    from membench.studies.run import run_study

    name = getattr(args, "name", None) or args.command
    out, tables = run_study(name, args.set, quick=args.quick, out=args.out, device=args.device,
                            progress=not args.quiet, command="membench " + " ".join(sys.argv[1:]))
    for table, df in tables.items():
        print(f"{table}: {len(df)} rows")
    print(f"wrote {out}")
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "detect": cmd_detect, "train": cmd_train, "distill": cmd_distill,
            "import": cmd_import,
            "quality": cmd_quality, "train-classifier": cmd_train_classifier,
            "report": cmd_report, "check": cmd_check, "baseline": cmd_baseline, "validate": cmd_validate,
            "study": cmd_study, "weights": cmd_weights, **{name: cmd_study for name in _study_commands()}}


def resolve_paths(args: argparse.Namespace) -> None:
    """The one place the CLI's folders get their defaults: ``args.workspace`` (``--workspace``,
    else ``$MEMBENCH_HOME``, else ``./membench-workspace``), ``args.results_dir``
    (``--results-dir``, else ``<workspace>/results``) and ``args.cache_dir`` (``--cache-dir``,
    else ``$MEMBENCH_CACHE``, else ``~/.cache/membench``), each a ``Path``, none inside the package.
    """
    from membench.core.workspace import Workspace, check_outside_package, default_cache_dir

    from membench.core.errors import OutputError

    ws = Workspace.resolve(getattr(args, "workspace", None))
    if ws.root.exists() and not ws.root.is_dir():
        raise OutputError(f"workspace {ws.root} exists and is not a folder")
    args.workspace = check_outside_package(ws.root, "workspace", "--workspace")
    if hasattr(args, "results_dir"):
        default = ws.results / RESULTS_SUBDIR.get(args.command, "")
        args.results_dir = check_outside_package(args.results_dir or default, "results folder", "--results-dir")
        if args.results_dir.exists() and not args.results_dir.is_dir():
            raise OutputError(f"results folder {args.results_dir} is not a folder (--results-dir must name a folder)")
    if hasattr(args, "cache_dir"):
        args.cache_dir = check_outside_package(args.cache_dir or default_cache_dir(), "cache folder", "--cache-dir")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"membench: warning: {str(message).strip().splitlines()[0] if str(message).strip() else category.__name__}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """The one error boundary: every ``MembenchError``, and every ``OSError`` on a path (read-only,
    full disk, not a folder), is one line ``membench: error: <problem> (<path>)`` and a non-zero
    exit (EXIT_*); ``--debug`` prints the traceback too."""
    import warnings

    from membench.core import devices
    from membench.core.paths import describe_os_error

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed in one line (EXIT_USAGE)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        from membench import __version__

        print(__version__)
        return EXIT_OK
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    notes: list[str] = []
    devices.set_announcer(notes.append)  # `--device auto` on a CPU-only machine: said once, after the work
    old_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    problem, caught = None, None
    try:
        from membench.core.workspace import using

        resolve_paths(args)
        from membench.core.progress import silenced

        with using(args.workspace), silenced(bool(getattr(args, "quiet", False))):
            # the registry and library defaults see the same workspace; --quiet silences every progress display
            code = COMMANDS[args.command](args)
        for note in notes:
            print(f"membench: note: {note}", file=sys.stderr)
        return code
    except MembenchError as exc:
        problem, code, caught = str(exc), EXIT_ERROR, exc
    except OSError as exc:  # a path the user gave: read-only, full, a file where a folder belongs
        problem, code, caught = describe_os_error(exc), EXIT_ERROR, exc
    except KeyboardInterrupt as exc:
        problem, code, caught = "interrupted; nothing half-written was kept", EXIT_INTERRUPTED, exc
    finally:
        devices.set_announcer(None)
        warnings.formatwarning = old_format
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exception(caught)
    first = problem.strip().splitlines()[0] if problem and problem.strip() else "unknown error"
    print(f"membench: {'error: ' if code != EXIT_INTERRUPTED else ''}{first}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
