"""Scientific studies run with membench itself (issue 7): one module per study.

A study is a dataclass registered under ``studies`` (its fields are its configuration,
settable as ``--set key=value``); ``run(out_dir, ctx)`` computes its tables, writes them
(CSV), its figures (PNG) and a ``record.json`` under ``out_dir`` and returns the tables.
"""
from membench.studies.base import Study, StudyContext, make_study

__all__ = ["Study", "StudyContext", "make_study"]
