import importlib
import sys
import textwrap

import pytest

from membench.core import registry
from membench.detectors import make_detector
from membench.core.errors import UnknownNameError
from membench.models.specs import resolve_model


def test_builtin_table_matches_decorators():
    for kind, table in registry.BUILTINS.items():
        for name, target in table.items():
            module, _, attr = target.partition(":")
            cls = getattr(importlib.import_module(module), attr)
            assert registry.get_class(kind, name) is cls
            assert cls.registry_name == name


def test_unknown_names_suggest_nearest():
    with pytest.raises(UnknownNameError) as exc:
        make_detector("l2rato")
    msg = str(exc.value)
    assert "did you mean l2ratio" in msg and "\n" not in msg
    with pytest.raises(UnknownNameError, match="did you mean teacher"):
        resolve_model("teachr")


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


def test_bad_toml_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "broken.toml").write_text("role = \n")
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(tmp_path))
    from membench.core.errors import MembenchError

    with pytest.raises(MembenchError, match="cannot parse"):
        resolve_model("broken")


def install_plugin(tmp_path, monkeypatch, body: str, entry: str, group: str = "membench.detectors"):
    """A real out-of-tree package with a dist-info entry point, put on sys.path."""
    site = tmp_path / "site"
    (site / "myplugin").mkdir(parents=True)
    (site / "myplugin" / "__init__.py").write_text(textwrap.dedent(body))
    dist = site / "myplugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    monkeypatch.syspath_prepend(str(site))
    kind = group.split(".")[1]
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", set())
    monkeypatch.setitem(registry._REGISTERED, kind, dict(registry._REGISTERED[kind]))
    monkeypatch.setitem(registry._PLUGIN_ERRORS, kind, [])
    yield_mod = sys.modules.pop("myplugin", None)
    del yield_mod


def test_entry_point_plugin_detector(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, """
        from dataclasses import dataclass
        import numpy as np
        from membench.detectors.base import Detector, DetectorOutput

        @dataclass
        class Always(Detector):
            value: float = 1.0
            def detect(self, samples, train, ctx):
                n = len(samples)
                return DetectorOutput(np.full(n, self.value), np.ones(n, bool), np.zeros(n, int))
        """, "always = myplugin:Always")
    assert "always" in registry.names("detectors")
    det = make_detector("always:value=2")
    assert det.value == 2 and det.registry_name == "always"


def test_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "raise RuntimeError('kaput')\n", "broken = myplugin:Nothing")
    with pytest.warns(UserWarning, match="kaput"):
        errors = registry.plugin_errors("detectors")
    assert any("kaput" in e for e in errors)
    assert make_detector("l2ratio").registry_name == "l2ratio"


def test_plugin_cannot_override_builtin(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "class Fake: pass\n", "l2ratio = myplugin:Fake")
    with pytest.warns(UserWarning, match="override"):
        registry.plugin_errors("detectors")
    from membench.detectors.l2ratio import L2Ratio

    assert registry.get_class("detectors", "l2ratio") is L2Ratio
