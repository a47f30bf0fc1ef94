"""The one registry mechanism: lazy built-ins, TOML entries, entry-point plugins and their validation."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from membench.cli import main
from membench.core import registry
from membench.core.errors import MembenchError, UnknownNameError
from membench.data import load_dataset
from membench.detectors import make_detector
from membench.models.specs import resolve_model

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "numpy", "pandas", "diffusers", "faiss", "sklearn", "matplotlib", "scipy", "torch_fidelity", "PIL")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- built-ins


@pytest.mark.parametrize("kind", sorted(registry.KINDS))
def test_every_declared_builtin_loads_named_and_valid(kind):
    reg = registry.registry(kind)
    assert reg.kind == kind
    for name, lazy in reg.builtins.items():
        obj = reg.get(name)
        assert obj is lazy.load()  # the declaration points at the code itself
        assert obj.registry_name == name  # set on load; two names sharing one class would fail here
        assert reg.problem(obj) is None
        assert lazy.description and "\n" not in lazy.description
        assert reg.describe(name) == lazy.description
        if "description" in obj.__dict__:  # distillers and studies carry it (model cards, `list`)
            assert obj.description == lazy.description


def test_kinds_are_listable_and_embedders_is_features():
    from membench.cli import LIST_KINDS

    assert set(registry.KINDS) <= set(LIST_KINDS) and "embedders" in LIST_KINDS
    assert registry.registry("embedders") is registry.registry("features")
    with pytest.raises(MembenchError, match="unknown registry kind 'widgets'"):
        registry.registry("widgets")


def test_unknown_names_suggest_nearest():
    with pytest.raises(UnknownNameError) as exc:
        make_detector("l2rato")
    msg = str(exc.value)
    assert "did you mean l2ratio" in msg and "\n" not in msg
    assert msg.startswith("unknown detector 'l2rato'") and "(known: " in msg
    with pytest.raises(UnknownNameError, match="did you mean teacher"):
        resolve_model("teachr")
    with pytest.raises(UnknownNameError, match="unknown study 'swep'; did you mean sweep"):
        registry.get_class("studies", "swep")


def test_declarative_entries_are_listed():
    assert "teacher" in registry.names("models")
    assert resolve_model("teacher").role == "teacher"
    assert resolve_model("teacher:steps=5").sampler == "heun:steps=5"


def test_declarative_detector_variant(tmp_path, monkeypatch):
    (tmp_path / "detectors").mkdir()
    (tmp_path / "detectors" / "l2ratio-strict.toml").write_text('base = "l2ratio"\n[params]\nthreshold = 0.1\n')
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path))
    det = make_detector("l2ratio-strict")
    assert det.threshold == 0.1 and det.registry_name == "l2ratio"
    assert "l2ratio-strict" in registry.names("detectors")


def test_toml_entry_does_not_shadow_builtin_code(tmp_path, monkeypatch):
    (tmp_path / "detectors").mkdir()
    (tmp_path / "detectors" / "l2ratio.toml").write_text('base = "carlini"\n')
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "digits.toml").write_text('path = "nowhere.npz"\n')
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path))
    assert make_detector("l2ratio").registry_name == "l2ratio"
    assert load_dataset("digits:n=8").spec == "digits:holdout=300,n=8,seed=0"


def test_bad_toml_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "broken.toml").write_text("role = \n")
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path))
    with pytest.raises(MembenchError, match="cannot parse"):
        resolve_model("broken")


def test_digits_is_a_registered_dataset(capsys):
    from membench.data import DATASETS
    from membench.data.digits import load

    assert DATASETS.get("digits") is load
    code, out, _ = run_cli(capsys, "list", "datasets")
    assert code == 0 and out.startswith("digits ") and DATASETS.describe("digits") in out
    direct = load(n=64)
    assert load_dataset("digits:n=64").fingerprint() == direct.fingerprint()
    with pytest.raises(MembenchError, match=r"dataset 'digits': unknown option\(s\) \['bogus'\]; options: \['holdout', 'n', 'seed'\]"):
        load_dataset("digits:bogus=1")


# ---------------------------------------------------------------- plugins


def install_plugin(tmp_path, monkeypatch, body: str, entry: str, group: str = "membench.detectors",
                   package: str = "myplugin", more: dict[str, str] | None = None) -> None:
    """A real out-of-tree package with dist-info entry points (``entry`` in ``group``, plus
    ``more``: group -> entry), put on sys.path; the registries read their entry points again
    (and forget them after the test)."""
    entries = {group: entry, **(more or {})}
    site = tmp_path / f"site-{package}"
    (site / package).mkdir(parents=True, exist_ok=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(body))
    dist = site / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("".join(f"[{g}]\n{e}\n" for g, e in entries.items()))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, package, raising=False)
    for g in entries:
        monkeypatch.setattr(registry.registry(g.split(".")[1]), "_plugins", None)


ALWAYS = """
    from dataclasses import dataclass
    import numpy as np
    from membench.detectors.base import Detector, DetectorOutput

    @dataclass
    class Always(Detector):
        value: float = 1.0
        higher_is_memorized = True
        def detect(self, samples, train, ctx):
            n = len(samples)
            return DetectorOutput(np.full(n, self.value), np.ones(n, bool), np.zeros(n, int))
"""


def test_entry_point_plugin_detector(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, ALWAYS, "always = myplugin:Always")
    assert "always" in registry.names("detectors")
    det = make_detector("always:value=2")
    assert det.value == 2 and det.registry_name == "always"
    code, out, err = run_cli(capsys, "list", "detectors")
    assert code == 0 and "[plugin myplugin:Always]" in out and err == ""


def test_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, "raise RuntimeError('kaput')\n", "broken = myplugin:Nothing")
    with pytest.warns(UserWarning, match="kaput"):
        errors = registry.plugin_errors("detectors")
    assert any("kaput" in e for e in errors)
    assert make_detector("l2ratio").registry_name == "l2ratio"
    assert "broken" not in registry.names("detectors")
    code, out, err = run_cli(capsys, "list", "detectors")
    assert code == 0 and "l2ratio" in out
    assert err.startswith("warning: plugin detector 'broken' (myplugin:Nothing) failed to load: RuntimeError: kaput")
    assert len(err.strip().splitlines()) == 1


def test_plugin_cannot_override_builtin(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "class Fake: pass\n", "l2ratio = myplugin:Fake")
    with pytest.warns(UserWarning, match="override"):
        registry.plugin_errors("detectors")
    from membench.detectors.l2ratio import L2Ratio

    assert registry.get_class("detectors", "l2ratio") is L2Ratio


@pytest.mark.parametrize("direction,why", [
    ("", r"missing attribute 'higher_is_memorized' \(bool: the score direction"),
    ("    higher_is_memorized = 'yes'\n", "attribute 'higher_is_memorized' must be bool, got str"),
])
def test_plugin_without_score_direction_is_refused_with_one_line(tmp_path, monkeypatch, capsys, direction, why):
    body = ("from dataclasses import dataclass\nfrom membench.detectors.base import Detector\n\n@dataclass\n"
            "class Loose(Detector):\n    threshold: float = 0.5\n" + direction +
            "    def detect(self, samples, train, ctx):\n        raise AssertionError('never run')\n")
    install_plugin(tmp_path, monkeypatch, body, "loose = myplugin:Loose")
    with pytest.warns(UserWarning, match=why):
        errors = registry.plugin_errors("detectors")
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith("plugin detector 'loose' (myplugin:Loose) refused: ")
    assert "loose" not in registry.names("detectors")
    with pytest.raises(UnknownNameError, match="unknown detector 'loose'"):
        make_detector("loose")
    code, _, err = run_cli(capsys, "list", "detectors")
    assert code == 0 and len(err.strip().splitlines()) == 1 and "higher_is_memorized" in err


def test_runtime_register_is_validated(monkeypatch):
    reg = registry.registry("detectors")
    monkeypatch.setattr(reg, "_added", dict(reg._added))

    class NoDirection:
        def detect(self, samples, train, ctx):
            raise AssertionError("never run")

    with pytest.raises(MembenchError, match="refused: missing attribute 'higher_is_memorized'"):
        registry.register("detectors", "nodir")(NoDirection)
    with pytest.raises(MembenchError, match="already registered"):
        registry.register("detectors", "l2ratio")(type("Other", (NoDirection,), {"higher_is_memorized": False}))
    cls = registry.register("detectors", "ok")(type("Ok", (NoDirection,), {"higher_is_memorized": True}))
    assert registry.get_class("detectors", "ok") is cls and cls.registry_name == "ok"


MEANPOOL = """
    from dataclasses import dataclass
    from membench.features.base import Embedder

    @dataclass
    class MeanPool(Embedder):
        '''2x2 mean-pooled pixels (a test plugin).'''
        def _embed_batch(self, model, x):
            import torch.nn.functional as F
            return F.avg_pool2d(x, 2).flatten(1)
"""


def test_embedders_alias_group_serves_detectors_and_quality(tmp_path, monkeypatch, capsys):
    """A plugin of the old group `membench.embedders` is a feature extractor for both users."""
    from membench.core.registry import registry as by_kind
    from membench.detectors import DetectorContext
    from membench.features.fidelity import resolve_extractor
    from membench.quality.evaluate import evaluate
    from membench.quality.metrics import MetricConfig

    install_plugin(tmp_path, monkeypatch, MEANPOOL, "meanpool = myplugin:MeanPool", group="membench.embedders")
    assert by_kind("features").get("meanpool").registry_name == "meanpool"
    for kind in ("features", "embedders"):
        code, out, _ = run_cli(capsys, "list", kind)
        assert code == 0 and "meanpool" in out and "2x2 mean-pooled pixels (a test plugin)." in out
    ds = load_dataset("digits:n=32")
    det = make_detector("embedsim:embedder=meanpool,threshold=0.99")
    out = det.detect(ds.images[:8], ds, DetectorContext(cache_dir=tmp_path / "c"))
    np.testing.assert_allclose(out.scores, 1.0, atol=1e-5)  # training images find themselves
    np.testing.assert_array_equal(out.nearest, np.arange(8))
    ext = resolve_extractor("meanpool")
    assert type(ext.extractor) is by_kind("features").get("meanpool") and ext.dim(ds.shape) == 16
    rec = evaluate(ds.heldout, ds, "meanpool", MetricConfig(metrics=("prc",)), references=["heldout"],
                   cache_dir=tmp_path / "c")
    assert rec["extractor"]["name"] == "meanpool" and rec["metrics"]["heldout"]["precision"]["value"] == 1.0


def test_list_features_shows_quality_and_detector_extractors(capsys):
    from membench.detectors.embedsim import DigitsSimilarity
    from membench.features.fidelity import QUALITY_NAMES

    code, out, _ = run_cli(capsys, "list", "features")
    listed = {line.split()[0] for line in out.splitlines()}
    quality = {QUALITY_NAMES["digits"], "inception-v3"}  # the quality default and the natural-image one
    similarity = {DigitsSimilarity().make_embedder().registry_name, "sscd", "clip", "pixels"}
    assert code == 0 and quality | similarity <= listed
    assert run_cli(capsys, "list", "embedders")[1] == out


def test_quality_and_detectors_get_the_same_digits_features(tmp_path):
    """The quality path (torch-fidelity's loop on uint8) and the detector path (embed) agree."""
    from membench.features import make_extractor
    from membench.features.fidelity import resolve_extractor
    from membench.quality.features import extract, to_uint8

    ds = load_dataset("digits:n=16")
    quantized = to_uint8(ds.heldout[:40]).astype(np.float32) / 127.5 - 1.0
    direct = make_extractor("digits-classifier").embed(quantized)
    np.testing.assert_allclose(extract(quantized, resolve_extractor("digits")), direct, rtol=1e-6, atol=1e-6)
    with pytest.raises(UnknownNameError, match="did you mean digits-embedder, digits-classifier"):
        make_extractor("digits")  # ambiguous since the registries merged: said, not guessed


LOADER = """
    import numpy as np
    from membench.data import Dataset

    def load(n: int = 4, broken: bool = False):
        '''Checkerboards (a test plugin).'''
        img = np.where(np.indices((8, 8)).sum(0) % 2, 1.0, -1.0).astype(np.float32)[None]
        imgs = np.stack([img] * n)
        if broken:
            imgs[0, 0, 0, 0] = np.nan
        return Dataset(spec=f"boards:n={n}", images=imgs, heldout=-imgs[:2])
"""


def test_plugin_dataset_loader(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, LOADER, "boards = myplugin:load", group="membench.datasets")
    ds = load_dataset("boards:n=6")
    assert ds.images.shape == (6, 1, 8, 8) and ds.heldout.shape == (2, 1, 8, 8)
    code, out, _ = run_cli(capsys, "list", "datasets")
    assert "boards" in out and "Checkerboards (a test plugin)." in out
    with pytest.raises(MembenchError, match=r"dataset 'boards': unknown option\(s\) \['m'\]"):
        load_dataset("boards:m=1")
    with pytest.raises(MembenchError, match="dataset 'boards' images: 1 image.*NaN"):
        load_dataset("boards:broken=true")


def test_plugin_registry_folder_for_models_and_datasets(tmp_path, monkeypatch):
    """A plugin package can ship model and dataset entries as a registry folder."""
    folder = tmp_path / "site-mymodels" / "mymodels" / "registry"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "their-teacher.toml").write_text(
        'role = "teacher"\ncheckpoint = "models/their-teacher"\nsampler = "heun:steps=4"\ndataset = "their-digits"\n')
    (folder / "datasets").mkdir()
    (folder / "datasets" / "their-digits.toml").write_text('base = "digits"\n[params]\nn = 12\n')
    body = "from pathlib import Path\nREGISTRY = Path(__file__).parent / 'registry'\n"
    install_plugin(tmp_path, monkeypatch, body, "mymodels = mymodels:REGISTRY", group="membench.models",
                   package="mymodels", more={"membench.datasets": "mymodels = mymodels:REGISTRY"})
    spec = resolve_model("their-teacher")
    assert Path(spec.checkpoint) == folder.parent / "models" / "their-teacher"
    assert len(load_dataset(spec.dataset)) == 12
    assert registry.registry("models").origin("their-teacher") == str(folder / "models" / "their-teacher.toml")


def test_models_plugin_must_be_a_folder(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, ALWAYS, "always = myplugin:Always", group="membench.models")
    with pytest.warns(UserWarning, match="must point at a registry folder"):
        assert registry.plugin_errors("models")
    assert "teacher" in registry.names("models")


# ---------------------------------------------------------------- the CLI stays light


def test_study_commands_come_from_the_registry():
    from membench.cli import build_parser
    from membench.studies import STUDIES

    tagged = STUDIES.names(tag="command")
    assert tagged and set(tagged) <= set(STUDIES.names())
    for name in tagged:
        args = build_parser().parse_args([name, "--quick"])
        assert args.command == name and args.quick


@pytest.mark.parametrize("argv", [["list", kind] for kind in (*registry.KINDS, "embedders")] +
                         [["--help"], ["run", "--help"], ["study", "--help"]])
def test_listing_and_help_import_nothing_heavy(argv):
    """`membench list KIND` and `--help` in a fresh interpreter: no torch, numpy, pandas, ..."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "membench", *argv], capture_output=True,
                         text=True, cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in res.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "membench" in imported  # the measurement saw membench itself
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
