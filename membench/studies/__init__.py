"""Scientific studies run with membench itself: one module per study.

A study is a dataclass registered in ``STUDIES`` (its fields are its configuration,
settable as ``--set key=value``); ``run(out_dir, ctx)`` computes its tables, writes them
(CSV), its figures (PNG) and a ``record.json`` under ``out_dir`` and returns the tables.
Studies tagged ``"command"`` are also top-level commands (``membench sweep``). Plugins:
entry-point group ``membench.studies``; a plugin must have ``run``.
"""
from membench.core.lazy import lazy_exports
from membench.core.registry import Lazy, Registry

STUDIES = Registry("studies", noun="study", required={
    "run": (callable, "run(out_dir, ctx) -> dict of tables"),
}, builtins={
    "rfnn": Lazy("membench.studies.rfnn_study:RFNNStudy",
                 "random-feature score model: Gram spectrum, memorization vs GD time and n, CD student's weights",
                 tags=("command",)),
    "distill-length": Lazy("membench.studies.distill_length:DistillLengthStudy",
                           "student memorization (every detector), nearest-image agreement and quality vs distillation length"),
    "training-time": Lazy("membench.studies.training_time:TrainingTimeStudy",
                          "teacher and CD-student memorization/quality at checkpoints along the teacher's training"),
    "seeds": Lazy("membench.studies.seeds:SeedsStudy",
                  "CD students over teacher x distillation seeds (raw, EMA, bias-corrected EMA) with nulls and controls"),
    "known-answer": Lazy("membench.studies.known_answer:KnownAnswerStudy",
                         "CD students of the empirical optimal denoiser (copies) and of its Gaussian fit (control)"),
    "sweep": Lazy("membench.studies.sweep:SweepStudy",
                  "teacher and CD-student memorization/quality vs training-set size (same budget per size)",
                  tags=("command",)),
})

__all__ = ["STUDIES", "Study", "StudyContext", "make_study"]
__getattr__ = lazy_exports(__name__, {name: "membench.studies.base" for name in __all__[1:]})
