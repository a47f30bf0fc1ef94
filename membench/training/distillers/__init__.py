"""Distillation methods: teacher + dataset + config -> student. One module per method.

``DISTILLERS`` declares the built-ins lazily; plugins use the entry-point group
``membench.distillers`` and must have ``distill``.
"""
from membench.core.lazy import lazy_exports
from membench.core.registry import Lazy, Registry

DISTILLERS = Registry("distillers", required={
    "distill": (callable, "distill(teacher, data, ctx) -> StudentResult"),
}, builtins={
    "cd": Lazy("membench.training.distillers.cd:ConsistencyDistillation",
               "Consistency distillation (Song et al. 2023): student from teacher weights, Heun teacher step"),
    "ct": Lazy("membench.training.distillers.ct:ConsistencyTraining",
               "Improved consistency training (Song & Dhariwal 2023), random init, no teacher weights"),
    "pd": Lazy("membench.training.distillers.pd:ProgressiveDistillation",
               "Progressive distillation (Salimans & Ho 2022): 2 teacher Euler steps -> 1 student step per stage"),
})

__all__ = ["DISTILLERS", "DistillContext", "Distiller", "StudentResult", "make_distiller"]
__getattr__ = lazy_exports(__name__, {name: "membench.training.distillers.base" for name in __all__[1:]})
