"""scripts/gpu_byo.py runs its steps end to end (on CPU, quick settings)."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_byo_script_runs_on_cpu(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_byo", REPO / "scripts" / "gpu_byo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--cpu", "--quick", "--out", str(tmp_path / "out")]) == 0
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert set(timings["seconds"]) == {"build", "import", "distill", "detect"} and timings["device"] == "cpu"
