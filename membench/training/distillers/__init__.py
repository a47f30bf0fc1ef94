"""Distillation methods: teacher + dataset + config -> student. One module per method."""
from membench.training.distillers.base import DistillContext, Distiller, StudentResult, make_distiller

__all__ = ["DistillContext", "Distiller", "StudentResult", "make_distiller"]
