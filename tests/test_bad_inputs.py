"""The bad-input matrix (issue 13): every bad name, option, number, seed, device, registry file,
checkpoint and output path is one line ``membench: error: ...`` naming the problem, a documented
exit code, no traceback, and nothing written: the results folder and the workspace are
byte-identical before and after. Most cases run in-process through ``membench.cli.main``; a few
as real processes; the Python API raises the typed errors with the same messages.
(The image loaders' own cases are in tests/data/test_bad_inputs.py.)
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from membench.cli import main
from membench.core.errors import DeviceError, InvalidInputError, MembenchError, OutputError, UsageError

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``roots``: what 'nothing written' compares."""
    out: dict[str, bytes | None] = {}
    for root in roots:
        if root.exists():
            for p in sorted(root.rglob("*")):
                out[str(p)] = None if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture
def env(tiny_teacher, tmp_path, workspace):
    """The tiny teacher (registry ``tmp_path/registry``), a results folder holding one earlier file,
    a plain file and a folder to misuse."""
    res = tmp_path / "res"
    res.mkdir()
    (res / "leaderboard.csv").write_text("model,detector\nearlier,row\n")
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    return {"tmp": tmp_path, "res": res, "ckpt": tiny_teacher, "reg": tmp_path / "registry" / "models",
            "ws": workspace}


def one_line(capsys, argv: list[str], code: int, match: str, roots: list[Path]) -> str:
    before = snapshot(*roots)
    got = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert got == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("membench: error: ") and match in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(*roots) == before, "something was written"
    print(f"MATRIX exit={got} {lines[0]}")  # `pytest -rP tests/test_bad_inputs.py | grep MATRIX` lists what each case gives
    return lines[0]


# --------------------------------------------------------------------------- registry-file setups


def _entry(env, name: str, body: str | bytes) -> None:
    path = env["reg"] / f"{name}.toml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())


GOOD = 'role = "teacher"\ncheckpoint = "models/tiny"\nsampler = "heun:steps=4"\ndataset = "digits:n=16"\n'


def _meta(env, **change) -> None:
    f = env["ckpt"] / "membench.json"
    meta = json.loads(f.read_text())
    meta.update(change)
    f.write_text(json.dumps(meta))


SETUPS = {
    "checkpoint-number": lambda e: _entry(e, "bad", GOOD.replace('"models/tiny"', "5")),
    "dataset-list": lambda e: _entry(e, "bad", GOOD.replace('"digits:n=16"', '["digits"]')),
    "sampler-table": lambda e: _entry(e, "bad", GOOD.replace('sampler = "heun:steps=4"', "sampler = {a = 1}")),
    "non-utf8": lambda e: _entry(e, "bad", GOOD.encode().replace(b"teacher", b"t\xe9acher\xff")),
    "toml-syntax": lambda e: _entry(e, "bad", GOOD + "oops = \n"),
    "bad-role": lambda e: _entry(e, "bad", GOOD.replace('"teacher"', '"wizard"')),
    "missing-key": lambda e: _entry(e, "bad", GOOD.replace('sampler = "heun:steps=4"\n', "")),
    "unknown-key": lambda e: _entry(e, "bad", GOOD + 'colour = "red"\n'),
    "ckpt-missing": lambda e: _entry(e, "bad", GOOD.replace("models/tiny", "models/nowhere")),
    "weights-garbage": lambda e: (e["ckpt"] / WEIGHTS).write_bytes(b"garbage"),
    "weights-truncated": lambda e: (e["ckpt"] / WEIGHTS).write_bytes((e["ckpt"] / WEIGHTS).read_bytes()[:-100]),
    "weights-missing": lambda e: (e["ckpt"] / WEIGHTS).unlink(),
    "shape-16": lambda e: _meta(e, image_shape=[1, 16, 16]),
    "shape-text": lambda e: _meta(e, image_shape="8x8"),
    "meta-missing": lambda e: (e["ckpt"] / "membench.json").unlink(),
    "meta-format": lambda e: _meta(e, format="other/9"),
    "unet-config": lambda e: (e["ckpt"] / "unet" / "config.json").write_text("{not json"),
    "det-params": lambda e: (_mk(e["reg"].parent / "detectors") / "myvar.toml").write_text(
        'base = "l2ratio"\nparams = "threshold=0.2"\n'),
}


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder

RUN = ["run", "--n-samples", "8", "--results-dir", "{res}", "--device", "cpu", "--quiet", "--no-quality"]


def run_args(*extra: str, model: str = "tiny", res: Path | None = None) -> list[str]:
    """``membench run`` on the tiny teacher; ``{res}`` is filled in by the caller, or from ``res``."""
    args = [*RUN, "--model", model, *extra]  # a later --results-dir wins over the first
    return [a.format(res=res) for a in args] if res is not None else args


# id, argv, exit code, what the line says, setup
CASES = [
    # names and options
    ("unknown-model", run_args(model="techer"), 1, "did you mean", None),
    ("unknown-detector", run_args("--detector", "l2ratoi"), 1, "did you mean l2ratio", None),
    ("option-float-text", run_args("--detector", "l2ratio:threshold=abc"), 1, "threshold=abc: must be a number", None),
    ("option-bool-text", run_args("--detector", "l2ratio:quantize=abc"), 1, "quantize=abc: must be true or false", None),
    ("option-bool-2", run_args("--detector", "l2ratio:quantize=2"), 1, "quantize=2: must be true or false", None),
    ("option-range", run_args("--detector", "l2ratio:threshold=7"), 1, "threshold", None),
    ("option-nan", run_args("--detector", "l2ratio:threshold=nan"), 1, "must be a finite number", None),
    ("option-unknown", run_args("--detector", "l2ratio:bogus=1"), 1, "unknown option(s) ['bogus']", None),
    ("option-no-value", run_args("--detector", "l2ratio:threshold"), 1, "expected key=value", None),
    ("option-int-float", run_args("--detector", "carlini:n=2.5"), 1, "n=2.5: must be an integer", None),
    ("option-int-exp", run_args("--detector", "carlini:n=1e3"), 1, "must be an integer", None),
    ("sampler-option-text", run_args(model="tiny:steps=abc"), 1, "sampler 'heun': option steps=abc", None),
    ("sampler-option-zero", run_args(model="tiny:steps=0"), 1, "steps=0 is out of range", None),
    ("sampler-option-unknown", run_args(model="tiny:colour=1"), 1, "unknown option(s) ['colour']", None),
    ("quality-extractor", [*RUN[:-1], "--model", "tiny", "--quality-extractor", "nope"], 1, "nope", None),
    # numbers and seeds
    ("count-zero", run_args("--n-samples", "0"), 1, "positive integer", None),
    ("count-negative", run_args("--n-samples", "-5"), 1, "positive integer", None),
    ("count-absurd", run_args("--n-samples", str(10**14)), 1, "GiB of memory", None),
    ("count-text", run_args("--n-samples", "abc"), 2, "invalid int value", None),
    ("seed-negative", run_args("--seed", "-1"), 1, "--seed must be an integer from 0 to 2**63-1", None),
    ("seed-65-bits", run_args("--seed", str(2**64)), 1, "--seed must be an integer from 0 to 2**63-1", None),
    ("seed-text", run_args("--seed", "x"), 2, "invalid int value", None),
    ("option-seed-negative", ["distill", "--teacher", "tiny", "--method", "cd:seed=-3", "--quiet"], 1,
     "seed=-3 is out of range: must be from 0 to 2**63-1", None),
    ("validate-seed", ["validate", "--model", "tiny", "--seed", "-2", "--results-dir", "{res}", "--quiet"], 1,
     "--seed must be", None),
    # devices
    ("device-tpu", run_args("--device", "tpu"), 1, "--device tpu: unknown device", None),
    ("device-cuda-7", run_args("--device", "cuda:7"), 1, "--device cuda:7", None),
    ("device-cpu-3", run_args("--device", "cpu:3"), 1, "one CPU device", None),
    ("device-garbage", run_args("--device", "cuda:x"), 1, "unknown device", None),
    ("detect-device", ["detect", "--samples", "{tmp}/none.npz", "--train", "digits:n=16", "--device", "tpu",
                       "--quiet"], 1, "unknown device", None),
    ("distill-device", ["distill", "--teacher", "tiny", "--method", "cd", "--device", "tpu", "--quiet"], 1,
     "unknown device", None),
    # registry files
    ("entry-checkpoint-number", run_args(model="bad"), 1, "'checkpoint' must be a string, got int 5", "checkpoint-number"),
    ("entry-dataset-list", run_args(model="bad"), 1, "'dataset' must be a string", "dataset-list"),
    ("entry-sampler-table", run_args(model="bad"), 1, "'sampler' must be a string", "sampler-table"),
    ("entry-non-utf8", run_args(model="bad"), 1, "bad.toml: not UTF-8 text", "non-utf8"),
    ("entry-toml-syntax", run_args(model="bad"), 1, "bad.toml: cannot parse", "toml-syntax"),
    ("entry-role", run_args(model="bad"), 1, "role must be one of", "bad-role"),
    ("entry-missing-key", run_args(model="bad"), 1, "missing required key 'sampler'", "missing-key"),
    ("entry-unknown-key", run_args(model="bad"), 1, "unknown key(s) ['colour']", "unknown-key"),
    # checkpoints
    ("ckpt-missing", run_args(model="bad"), 1, "checkpoint folder not found", "ckpt-missing"),
    ("ckpt-garbage", run_args(), 1, "not a safetensors file", "weights-garbage"),
    ("ckpt-truncated", run_args(), 1, "truncated weights", "weights-truncated"),
    ("ckpt-no-weights", run_args(), 1, "checkpoint is incomplete", "weights-missing"),
    ("ckpt-shape", run_args(), 1, "image_shape [1, 16, 16]", "shape-16"),
    ("ckpt-shape-text", run_args(), 1, "'image_shape' must be [channels, height, width]", "shape-text"),
    ("ckpt-no-meta", run_args(), 1, "the configs do not say how the network is parameterized", "meta-missing"),
    ("ckpt-format", run_args(), 1, "unsupported checkpoint metadata format", "meta-format"),
    ("ckpt-unet-config", run_args(), 1, "corrupt UNet config", "unet-config"),
    # output paths
    ("results-dir-file", run_args("--results-dir", "{tmp}/afile"), 1, "is not a folder", None),
    ("results-dir-under-file", run_args("--results-dir", "{tmp}/afile/sub"), 1, "is a file, not a folder", None),
    ("report-results-file", ["report", "--results-dir", "{tmp}/afile", "--device", "cpu"], 1, "is not a folder", None),
    ("workspace-file", ["list", "models", "--workspace", "{tmp}/afile"], 1, "is not a folder", None),
    ("per-sample-folder", ["detect", "--samples", "{tmp}/none.npz", "--train", "digits:n=16", "--per-sample",
                           "{tmp}/adir", "--device", "cpu", "--quiet"], 1, "--per-sample file", None),
    ("detect-results-file", ["detect", "--samples", "{tmp}/none.npz", "--train", "digits:n=16", "--results-dir",
                             "{tmp}/afile", "--device", "cpu", "--quiet"], 1, "is not a folder", None),
    # distill
    ("distill-name-escape", ["distill", "--teacher", "tiny", "--method", "cd", "--name", "../../x", "--quiet"], 1,
     "--name '../../x' is not a valid name", None),
    ("distill-name-slash", ["distill", "--teacher", "tiny", "--method", "cd", "--name", "a/b", "--quiet"], 1,
     "not a valid name", None),
    ("distill-name-absolute", ["distill", "--teacher", "tiny", "--method", "cd", "--name", "/tmp/x", "--quiet"], 1,
     "not a valid name", None),
    ("distill-eval-negative", ["distill", "--teacher", "tiny", "--method", "cd", "--eval-samples", "-1", "--quiet"], 1,
     "--eval-samples must be", None),
    ("distill-option-text", ["distill", "--teacher", "tiny", "--method", "cd:lr=abc", "--quiet"], 1,
     "distiller 'cd': option lr=abc: must be a number", None),
    ("distill-option-zero-lr", ["distill", "--teacher", "tiny", "--method", "cd:lr=0", "--quiet"], 1,
     "is out of range: must be greater than 0", None),
    ("distill-unknown-method", ["distill", "--teacher", "tiny", "--method", "cdd", "--quiet"], 1, "did you mean cd", None),
    ("distill-out-under-file", ["distill", "--teacher", "tiny", "--method", "cd", "--out", "{tmp}/afile/x", "--quiet"],
     1, "afile is not a folder", None),
    ("detector-entry-params", run_args("--detector", "myvar"), 1, "'params' must be a table", "det-params"),
    ("report-device", ["report", "--results-dir", "{res}", "--device", "tpu"], 1, "--device tpu: unknown device",
     None),
    ("distill-eval-absurd", ["distill", "--teacher", "tiny", "--method", "cd", "--eval-samples", str(10**14),
                             "--device", "cpu", "--quiet"], 1, "--eval-samples 100000000000000 needs", None),
    ("dataset-option", ["detect", "--samples", "{tmp}/none.npz", "--train", "digits:n=abc", "--device", "cpu",
                        "--quiet"], 1, "option n=abc: must be an integer", None),
    # study options (--set) are typed like component options; nothing is made before they pass
    ("study-int-text", ["study", "seeds", "--set", "iterations=abc", "--out", "{tmp}/adir/s"], 1,
     "study 'seeds': option iterations=abc: must be an integer", None),
    ("study-bool-text", ["study", "seeds", "--set", "quality=maybe", "--out", "{tmp}/adir/s"], 1,
     "option quality=maybe: must be true or false", None),
    ("study-list-item", ["study", "seeds", "--set", "teacher_seeds=0,x", "--out", "{tmp}/adir/s"], 1,
     "option teacher_seeds=x: must be an integer", None),
    ("study-unknown-part", ["study", "seeds", "--set", "only=zzz", "--out", "{tmp}/adir/s"], 1,
     "unknown part(s) ['zzz']", None),
]


@pytest.mark.parametrize("case,argv,code,match,setup", CASES, ids=[c[0] for c in CASES])
def test_bad_input(env, capsys, case, argv, code, match, setup):
    if case == "device-cuda-7":
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    if setup:
        SETUPS[setup](env)
    argv = [a.format(**{k: str(v) for k, v in env.items()}) for a in argv]
    one_line(capsys, argv, code, match, [env["res"], env["ws"], env["tmp"] / "adir"])


def test_device_cuda_without_cuda(env, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    one_line(capsys, run_args("--device", "cuda", res=env["res"]), 1, "--device cuda: CUDA is not available", [env["res"], env["ws"]])


def test_auto_device_falls_back_and_says_so_once(env, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert main(["run", "--model", "tiny", "--n-samples", "8", "--results-dir", str(env["res"]), "--no-quality",
                 "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["membench: note: --device auto: no CUDA device here; running on the CPU"]


# --------------------------------------------------------------------------- OS errors on user paths


def deny_writes(monkeypatch, root: Path, code: int) -> None:
    """Make every create/write under ``root`` fail with ``code`` (EROFS: read-only, ENOSPC: full):
    root can write into a chmod-ed folder, so the failure is simulated where the kernel reports it."""
    real_open, real_mkdir = os.open, os.mkdir

    def under(path) -> bool:
        return Path(os.fspath(path)).absolute().is_relative_to(root)

    def guarded_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if under(path):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


@pytest.mark.parametrize("code,problem", [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left")])
def test_run_into_unwritable_results(env, capsys, monkeypatch, code, problem):
    deny_writes(monkeypatch, env["res"], code)
    line = one_line(capsys, run_args(res=env["res"]), 1, problem, [env["res"], env["ws"]])
    assert str(env["res"]) in line  # names the path


@pytest.mark.parametrize("code,problem", [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space left")])
def test_report_into_unwritable_results(env, capsys, monkeypatch, code, problem):
    assert main(run_args(res=env["res"])) == 0
    capsys.readouterr()
    deny_writes(monkeypatch, env["res"], code)
    line = one_line(capsys, ["report", "--results-dir", str(env["res"]), "--device", "cpu"], 1, problem,
                    [env["res"], env["ws"]])
    assert str(env["res"]) in line


def test_debug_shows_the_traceback(env, capsys):
    assert main(["--debug", *run_args("--device", "tpu", res=env["res"])]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "DeviceError" in err and err.strip().splitlines()[-1].startswith("membench: error:")
    assert main([*run_args("--seed", "-1", res=env["res"]), "--debug"]) == 1  # after the command too
    assert "Traceback" in capsys.readouterr().err


def test_list_models_names_a_broken_entry_and_lists_the_rest(env, capsys):
    SETUPS["non-utf8"](env)
    _entry(env, "worse", GOOD.replace('"models/tiny"', "5"))
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "teacher" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "BROKEN" in rows["bad"] and "bad.toml: not UTF-8 text" in rows["bad"]
    assert "BROKEN" in rows["worse"] and "'checkpoint' must be a string" in rows["worse"]
    assert "BROKEN" not in rows["tiny"]


# --------------------------------------------------------------------------- the Python API


def test_api_raises_typed_errors_with_the_cli_messages(env, capsys):
    import membench
    from membench.models.specs import resolve_model
    from membench.training.distill import distill_from_registry

    cases = [
        (lambda: membench.run("tiny", n_samples=8, seed=-1, results_dir=env["res"]), UsageError,
         run_args("--seed", "-1", res=env["res"])),
        (lambda: membench.run("tiny", n_samples=8, device="tpu", results_dir=env["res"]), DeviceError,
         run_args("--device", "tpu", res=env["res"])),
        (lambda: membench.run("tiny", "l2ratio:quantize=abc", n_samples=8, results_dir=env["res"], quality=False),
         UsageError, run_args("--detector", "l2ratio:quantize=abc", res=env["res"])),
        (lambda: membench.run("tiny", n_samples=8, results_dir=env["tmp"] / "afile", quality=False), OutputError,
         None),
        (lambda: distill_from_registry("tiny", "cd", name="../x", progress=False), UsageError,
         ["distill", "--teacher", "tiny", "--method", "cd", "--name", "../x", "--quiet"]),
    ]
    before = snapshot(env["res"], env["ws"])
    for call, kind, argv in cases:
        with pytest.raises(kind) as info:
            call()
        if argv is not None:
            assert main(argv) == 1
            assert capsys.readouterr().err.strip() == f"membench: error: {info.value}"
    SETUPS["checkpoint-number"](env)
    with pytest.raises(InvalidInputError, match="'checkpoint' must be a string"):
        resolve_model("bad")
    assert snapshot(env["res"], env["ws"]) == before
    assert issubclass(DeviceError, MembenchError) and issubclass(UsageError, MembenchError)


# --------------------------------------------------------------------------- real processes


def _membench(args: list[str], env_vars: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_vars}
    return subprocess.run([sys.executable, "-m", "membench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_real_process_errors_are_one_line(env):
    vars_ = {"MEMBENCH_REGISTRY": str(env["tmp"] / "registry"), "MEMBENCH_HOME": str(env["ws"])}
    before = snapshot(env["res"], env["ws"])
    for argv, code, match in [
        (run_args("--device", "tpu"), 1, "membench: error: --device tpu: unknown device"),
        (run_args("--n-samples", "abc"), 2, "membench: error: argument --n-samples: invalid int value"),
    ]:
        proc = _membench([a.format(res=env["res"]) for a in argv], vars_)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code and len(lines) == 1 and match in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert snapshot(env["res"], env["ws"]) == before
    assert not (env["tmp"].parent / "x").exists()
