"""Concurrent `membench run`s share one results folder: no pair computed twice, nothing clobbered."""
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd

from membench.core.locks import claim_each, file_lock

REPO = Path(__file__).resolve().parents[2]


def test_file_lock_excludes_a_second_holder(tmp_path):
    lock = tmp_path / "x.lock"
    with file_lock(lock) as got:
        assert got
        with file_lock(lock, blocking=False) as second:  # a separate open file: a separate holder
            assert not second
    with file_lock(lock, blocking=False) as again:
        assert again


def test_claim_each_defers_busy_items_and_skips_finished_ones(tmp_path):
    done: set[int] = set()
    busy = threading.Event()
    release = threading.Event()

    def other_worker():  # holds item 0 until told, then marks it done
        with file_lock(tmp_path / "0.lock"):
            busy.set()
            release.wait(10)
            done.add(0)

    t = threading.Thread(target=other_worker)
    t.start()
    busy.wait(10)
    order = []
    for item in claim_each([0, 1, 2], lambda i: tmp_path / f"{i}.lock", lambda i: i in done):
        order.append(item)
        done.add(item)
        if item == 2:
            release.set()
    t.join()
    assert order == [1, 2]  # 0 was deferred, waited for, and found finished


COUNTING_DETECTOR = textwrap.dedent('''
    import os, sys, time
    from dataclasses import dataclass
    from membench.core.registry import register
    from membench.detectors.l2ratio import L2Ratio

    @register("detectors", "counted")
    @dataclass
    class Counted(L2Ratio):
        """l2ratio that logs every computation and takes its time (so the runs overlap)."""
        calibrate_on_heldout = False  # count the pairs themselves, not their held-out controls
        def detect(self, samples, train, ctx):
            with open(os.environ["COUNT_LOG"], "a") as fh:
                fh.write(f"{ctx.model.name} {self.threshold} {os.getpid()}\\n")
            time.sleep(0.5)
            return super().detect(samples, train, ctx)

    from membench.cli import main
    sys.exit(main(sys.argv[1:]))
''')


def test_two_processes_share_the_work(tiny_teacher, tmp_path):
    script = tmp_path / "counted_run.py"
    script.write_text(COUNTING_DETECTOR)
    log = tmp_path / "count.log"
    res = tmp_path / "res"
    env = {**os.environ, "COUNT_LOG": str(log), "PYTHONPATH": str(REPO)}
    dets = ",".join(f"counted:threshold={t}" for t in (0.2, 0.3, 0.4, 0.5))
    cmd = [sys.executable, str(script), "run", "--model", "tiny", "--detector", dets, "--n-samples", "16",
           "--results-dir", str(res), "--quiet", "--device", "cpu"]
    procs = [subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    lines = log.read_text().split()
    computed = [tuple(lines[i:i + 3]) for i in range(0, len(lines), 3)]
    keys = [(m, t) for m, t, _ in computed]
    assert sorted(keys) == sorted(("tiny", t) for t in ("0.2", "0.3", "0.4", "0.5"))  # each exactly once
    assert len({pid for _, _, pid in computed}) == 2  # and the two runs really shared the work
    board = pd.read_csv(res / "leaderboard.csv")
    assert len(board) == 4 and set(board["detector"]) == {f"counted:threshold={t}" for t in ("0.2", "0.3", "0.4", "0.5")}
    assert len(list((res / "records" / "detection" / "tiny").glob("*.json"))) == 4
    assert not list(res.rglob("*.tmp"))
