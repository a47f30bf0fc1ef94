"""Distillers on the tiny teacher: few iterations, real code paths, files and registry entries."""
import sys
import textwrap

import numpy as np
import pytest
import torch

from membench.core import registry
from membench.models.checkpoints import load_denoiser
from membench.cli import main
from membench.core.errors import MembenchError
from membench.models.specs import resolve_model


def distill(capsys, *argv):
    code = main(["distill", *argv, "--quiet", "--eval-samples", "20"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("method,sampler", [
    ("cd:iterations=3,batch_size=8", "consistency:levels=18,steps=1"),
    ("ct:iterations=3,batch_size=8", "consistency:steps=1"),
    ("pd:start_steps=4,final_steps=2,iterations_per_stage=2,batch_size=8", "euler:steps=2,to_zero=false"),
])
def test_builtin_distillers_end_to_end(tiny_teacher, workspace, tmp_path, capsys, method, sampler):
    code, out, err = distill(capsys, "--teacher", "tiny", "--method", method, "--name", "stu")
    assert code == 0, err
    spec = resolve_model("stu")
    assert spec.role == "student" and spec.teacher == "tiny" and spec.sampler == sampler
    # checkpoint and entry in the workspace, not beside the teacher's registry
    assert spec.entry_path == str(workspace / "registry" / "models" / "stu.toml")
    assert spec.checkpoint == str(workspace / "models" / "stu")
    assert not (tmp_path / "models" / "stu").exists() and not (tmp_path / "registry" / "models" / "stu.toml").exists()
    model, meta = load_denoiser(spec.checkpoint)
    assert meta["teacher"] == "tiny" and meta["method"] == method.split(":")[0]
    assert "membench distill --teacher tiny" in (workspace / "models" / "stu" / "README.md").read_text()
    res = tmp_path / "res"
    assert main(["run", "--model", "tiny,stu", "--n-samples", "16", "--results-dir", str(res), "--quiet"]) == 0
    assert "stu" in capsys.readouterr().out


def test_cd_student_starts_as_teacher_with_boundary_condition(tiny_teacher):
    from membench.data import load_dataset
    from membench.training.distillers import DistillContext, make_distiller

    teacher, _ = load_denoiser(tiny_teacher)
    res = make_distiller("cd:iterations=0").distill(teacher, load_dataset("digits:n=16"), DistillContext())
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(res.student(x, 0.002), x)  # f(x, sigma_min) = x
    sd = res.student.state_dict()
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(sd[k], v)  # initialized from the teacher's weights
    # at large sigma the boundary scalings equal the EDM ones, so the student is the teacher's denoiser
    torch.testing.assert_close(res.student(x * 80, 80.0), teacher(x * 80, 80.0), atol=1e-4, rtol=1e-4)


def test_ct_student_does_not_inherit_teacher_weights(tiny_teacher):
    from membench.data import load_dataset
    from membench.training.distillers import DistillContext, make_distiller

    teacher, _ = load_denoiser(tiny_teacher)
    ct = make_distiller("ct:iterations=0,seed=3")
    res = ct.distill(teacher, load_dataset("digits:n=16"), DistillContext())
    fresh = ct.initial_student(teacher)
    same_as_teacher = [torch.equal(a, b) for a, b in zip(res.student.parameters(), teacher.parameters())
                       if a.numel() > 1 and b.abs().sum() > 0 and b.std() > 0]
    assert not any(same_as_teacher)
    for a, b in zip(res.student.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b)  # exactly the seeded random init


def test_ct_curriculum_and_level_probabilities():
    from membench.training.distillers.ct import curriculum, lognormal_level_probs
    from membench.models.samplers.karras import karras_sigmas

    assert curriculum(0, 1000, 10, 80) == 11
    assert curriculum(999, 1000, 10, 80) == 81
    assert [curriculum(k, 400, 10, 80) for k in (0, 100, 200, 300)] == [11, 21, 41, 81]
    p = lognormal_level_probs(karras_sigmas(41).flip(0).double(), -1.1, 2.0)
    assert p.sum().item() == pytest.approx(1.0) and (p >= 0).all()
    sig = karras_sigmas(41).flip(0)
    mode = int(p.argmax())
    assert sig[mode] < np.exp(-1.1) * 3 and sig[mode + 1] > np.exp(-1.1) / 3  # mass around exp(P_mean)


def test_pd_ramp_grid_is_nested():
    from membench.models.samplers.karras import EulerSampler

    g4 = EulerSampler(steps=4, to_zero=False).grid()
    g2 = EulerSampler(steps=2, to_zero=False).grid()
    np.testing.assert_allclose(g4[::2], g2, rtol=1e-12)
    assert g2[0] == pytest.approx(80) and g2[-1] == pytest.approx(0.002)


def test_multistep_consistency_sampler_uses_paired_noise():
    from membench.models.samplers.consistency import ConsistencySampler
    from membench.models.samplers.noise import noise_for

    calls = []

    def f(x, sigma):
        calls.append(float(sigma[0]))
        return torch.zeros_like(x)

    s = ConsistencySampler(steps=2)
    idx = np.arange(3)
    out = s.sample(f, noise_for(0, idx, (1, 8, 8)), lambda k: noise_for(0, idx, (1, 8, 8), step=k))
    assert len(calls) == 2 == s.nfe and calls[0] == pytest.approx(80) and calls[1] < 80
    assert out.abs().max() == 0


@pytest.mark.parametrize("argv,match", [
    (["--teacher", "tiny", "--method", "cdx"], "did you mean cd"),
    (["--teacher", "nope", "--method", "cd"], "unknown model"),
    (["--teacher", "tiny", "--method", "cd:bogus=1"], "unknown option"),
    (["--teacher", "tiny", "--method", "cd:loss=lpips"], "LPIPS"),
    (["--teacher", "tiny", "--method", "pd:start_steps=6"], "powers of two"),
])
def test_bad_distill_input(tiny_teacher, capsys, argv, match):
    code, _, err = distill(capsys, *argv)
    assert code == 1 and match in err and len(err.strip().splitlines()) == 1


def test_refuses_existing_output_and_student_as_teacher(tiny_teacher, tmp_path, capsys):
    assert distill(capsys, "--teacher", "tiny", "--method", "cd:iterations=1,batch_size=4", "--name", "s1")[0] == 0
    code, _, err = distill(capsys, "--teacher", "tiny", "--method", "cd:iterations=1", "--name", "s1")
    assert code == 1 and "already" in err
    code, _, err = distill(capsys, "--teacher", "s1", "--method", "cd:iterations=1", "--name", "s2")
    assert code == 1 and "not a teacher" in err


def test_incompatible_teacher_checkpoint(tiny_teacher, capsys):
    import json

    meta = json.loads((tiny_teacher / "membench.json").read_text())
    meta["edm"]["boundary"] = True
    (tiny_teacher / "membench.json").write_text(json.dumps(meta))
    code, _, err = distill(capsys, "--teacher", "tiny", "--method", "cd:iterations=1", "--name", "s3")
    assert code == 1 and "consistency model" in err


def install_distiller_plugin(tmp_path, monkeypatch, body):
    site = tmp_path / "site"
    (site / "toydistill").mkdir(parents=True)
    (site / "toydistill" / "__init__.py").write_text(textwrap.dedent(body))
    dist = site / "toydistill-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toydistill\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[membench.distillers]\ntoy = toydistill:Toy\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "toydistill", raising=False)
    monkeypatch.setattr(registry.registry("distillers"), "_plugins", None)  # read entry points again, forget after


TOY = """
    from dataclasses import dataclass
    import copy, torch
    from membench.training.distillers import Distiller, StudentResult

    @dataclass
    class Toy(Distiller):
        '''Out-of-tree example: the teacher's weights scaled, sampled with 1 Euler step.'''
        scale: float = 1.0
        fail: bool = False
        def distill(self, teacher, data, ctx):
            if self.fail:
                raise KeyboardInterrupt  # an interrupted distillation
            student = copy.deepcopy(teacher)
            with torch.no_grad():
                for p in student.parameters():
                    p.mul_(self.scale)
            return StudentResult(student=student, sampler="euler:steps=1", record={"config": {"scale": self.scale}})
"""


def test_out_of_tree_distiller_plugin_end_to_end(tiny_teacher, tmp_path, capsys, monkeypatch):
    install_distiller_plugin(tmp_path, monkeypatch, TOY)
    assert main(["list", "distillers"]) == 0
    assert "toy" in capsys.readouterr().out
    code, out, err = distill(capsys, "--teacher", "tiny", "--method", "toy:scale=0.5", "--name", "toy-student")
    assert code == 0, err
    spec = resolve_model("toy-student")
    assert spec.method == "toy" and spec.sampler == "euler:steps=1"
    teacher, _ = load_denoiser(tiny_teacher)
    student, _ = load_denoiser(spec.checkpoint)
    p_t, p_s = next(teacher.parameters()), next(student.parameters())
    torch.testing.assert_close(p_s, 0.5 * p_t)
    assert main(["run", "--model", "toy-student", "--n-samples", "8", "--results-dir", str(tmp_path / "r"), "--quiet"]) == 0


def test_interrupted_distillation_leaves_nothing(tiny_teacher, workspace, tmp_path, capsys, monkeypatch):
    install_distiller_plugin(tmp_path, monkeypatch, TOY)
    code = main(["distill", "--teacher", "tiny", "--method", "toy:fail=true", "--name", "half", "--quiet"])
    assert code == 130
    for root in (workspace, tmp_path):  # neither in the workspace nor beside the teacher
        assert not (root / "models" / "half").exists()
        assert not (root / "registry" / "models" / "half.toml").exists()
        assert not list(root.glob("models/.*tmp"))
    with pytest.raises(MembenchError):
        resolve_model("half")
