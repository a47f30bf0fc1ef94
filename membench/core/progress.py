"""Progress on long steps: the one place membench shows it (on ``rich.progress``).

Two ways in, both no-ops when progress is off:

    from membench.core import progress

    for batch in progress.track(batches, "sample teacher", enabled=flag):
        ...                                           # an iterator wrapper: one tick per item
    for start in progress.track(range(0, n, b), "sample", total=n, size=lambda s: min(b, n - s)):
        ...                                           # ticks in items of your choice (samples, not batches)

    with progress.task("l2ratio on teacher", total=None, enabled=flag) as bar:
        ...                                           # a context manager around one long step
        bar.advance(k)                                # k items done (total known: bar, count, ETA)
        bar.update(loss=0.0123)                       # fields shown after the bar (loss, ...)

    net = progress.ticking(model, bar, batch / nfe)   # ticks on every call of a function (network evaluations)

Progress is shown only when the caller's ``enabled`` is true, nothing silenced it
(``silence()``/``silenced()``: the CLI's ``--quiet``) and standard error is a terminal; output to a pipe or
a file never gets bars. Nested and successive tasks share one live display; a finished task
leaves one line ("done ... in 1.2 s") above the ones still running.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

_silenced = False
_live: dict[str, Any] = {"progress": None, "depth": 0}


def silence(on: bool = True) -> None:
    """Turn every progress display off (``--quiet``) or back on."""
    global _silenced
    _silenced = on


@contextmanager
def silenced(on: bool = True) -> Iterator[None]:
    """``silence(on)`` for the duration of a block (one CLI command), then as before."""
    global _silenced
    before = _silenced
    _silenced = _silenced or on
    try:
        yield
    finally:
        _silenced = before


def active(enabled: bool = True) -> bool:
    """Would a task with ``enabled`` be shown here?"""
    return bool(enabled) and not _silenced and sys.stderr is not None and sys.stderr.isatty()


class Task:
    """A handle on one shown step; every method is a no-op when the step is not shown."""

    def __init__(self, progress: Any = None, task_id: Any = None):
        self._progress, self._id = progress, task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._id, n)

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def update(self, total: float | None = None, description: str | None = None, completed: float | None = None,
               **fields: Any) -> None:
        """Change the total, description or count done, or set shown fields (e.g. ``loss=0.01``)."""
        if self._progress is None:
            return
        kw: dict[str, Any] = {}
        if total is not None:
            kw["total"] = total
        if completed is not None:
            kw["completed"] = completed
        if description is not None:
            kw["description"] = description
        if fields:
            info = "  ".join(f"{k} {_fmt(v)}" for k, v in fields.items())
            kw["info"] = info
        self._progress.update(self._id, **kw)


class _Ticking:
    """``fn`` that advances ``bar`` by ``amount`` after every call; other attributes pass through."""

    def __init__(self, fn: Any, bar: Task, amount: float):
        self._fn, self._bar, self._amount = fn, bar, amount

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self._fn(*args, **kwargs)
        self._bar.advance(self._amount)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fn, name)


def ticking(fn: T, bar: Task, amount: float = 1) -> T:
    """``fn`` itself when ``bar`` is not shown, else a stand-in that ticks ``bar`` on every call
    (e.g. a network evaluated ``nfe`` times per batch: ``amount = batch / nfe`` samples)."""
    return _Ticking(fn, bar, amount) if bar.shown else fn  # type: ignore[return-value]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _make_progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class CountAndEta(ProgressColumn):
        """``done/total eta m:ss`` for a counted task; nothing for a step without a total."""

        def render(self, task: Any) -> Text:
            if task.total is None:
                return Text("")
            left = task.time_remaining
            eta = "" if left is None else f" eta {int(left) // 60}:{int(left) % 60:02d}"
            return Text(f"{int(task.completed)}/{int(task.total)}{eta}")

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24), CountAndEta(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=Console(stderr=True),
                    transient=True)


@contextmanager
def task(description: str, total: float | None = None, enabled: bool = True) -> Iterator[Task]:
    """Show one long step while the block runs; ``total=None`` shows a spinner and the elapsed time."""
    if not active(enabled):
        yield Task()
        return
    if _live["progress"] is None:
        _live["progress"] = _make_progress()
        _live["progress"].start()
    from rich.markup import escape

    prog = _live["progress"]
    _live["depth"] += 1
    description = escape(description)
    t0 = time.time()
    task_id = prog.add_task(description, total=total, info="")
    ok = False
    try:
        yield Task(prog, task_id)
        ok = True
    finally:
        prog.remove_task(task_id)
        _live["depth"] -= 1
        if _live["depth"] == 0:
            prog.stop()
            _live["progress"] = None
        else:
            prog.refresh()
        if ok:
            prog.console.print(f"[dim]done[/dim] {description} in {time.time() - t0:.1f} s", highlight=False)


def track(items: Iterable[T], description: str, total: float | None = None, enabled: bool = True,
          size: Callable[[T], float] | None = None) -> Iterator[T]:
    """Iterate over ``items``, one tick each, or ``size(item)`` ticks (e.g. the samples in a batch);
    ``total`` defaults to ``len(items)`` when it has one."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with task(description, total=total, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.advance(size(item) if size is not None else 1)
