"""Headless Chromium checks of the report's layout, and the screenshot in docs/img/.

``layout(html)`` opens a copy of the report at 1280 px wide with a script appended that
writes the widths it measures into the page, dumps the DOM and returns them; nothing is
added to the report itself (it has no scripts).

Rebuild the committed screenshot (after ``membench run --model all --detector l2ratio,carlini``
and ``membench report``):

    python -m tests.report.chromium membench-workspace/results/report/report.html docs/img/report.png
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PROBE = """<script>
(function () {
  const doc = document.documentElement, out = {viewport: doc.clientWidth, page: doc.scrollWidth};
  for (const id of ["leaderboard-table", "effect-table"]) {
    const t = document.getElementById(id);
    if (!t) continue;
    out[id] = {right: t.getBoundingClientRect().right, overflow: t.parentElement.scrollWidth - t.parentElement.clientWidth};
  }
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180)


def layout(html: Path, width: int = WIDTH) -> dict:
    """Widths measured in the rendered report at ``width`` px: the page's and each main table's."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(Path(html).read_text().replace("</body>", PROBE + "</body>"))
        res = _run([f"--window-size={width},900", "--dump-dom", probe.as_uri()], Path(tmp) / "profile")
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-2000:])
        m = re.search(r'<pre id="layout-probe">(.*?)</pre>', res.stdout, re.S)
        if not m:
            raise RuntimeError("the layout probe did not run")
        return {"dom": res.stdout, **json.loads(m.group(1).replace("&quot;", '"'))}


def screenshot(html: Path, out: Path, width: int = WIDTH, height: int = 1700) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        res = _run([f"--window-size={width},{height}", f"--screenshot={Path(out).resolve()}", Path(html).resolve().as_uri()],
                   Path(tmp) / "profile")
    if res.returncode != 0 or not Path(out).is_file():
        raise RuntimeError(res.stderr[-2000:])
    return Path(out)


def no_horizontal_scroll(measured: dict) -> list[str]:
    """What overflows the window: the page, or a main table (its right edge or its scroll box)."""
    problems = []
    if measured["page"] > measured["viewport"]:
        problems.append(f"page {measured['page']} px wide in a {measured['viewport']} px window")
    for tid in ("leaderboard-table", "effect-table"):
        t = measured.get(tid)
        if t and (t["right"] > measured["viewport"] or t["overflow"] > 0):
            problems.append(f"{tid}: right edge {t['right']:.0f} px, scrolls by {t['overflow']} px")
    return problems


if __name__ == "__main__":
    html, out = Path(sys.argv[1]), Path(sys.argv[2])
    bad = no_horizontal_scroll(layout(html))
    if bad:
        sys.exit("layout: " + "; ".join(bad))
    print(f"no horizontal scroll at {WIDTH} px; wrote {screenshot(html, out)}")
