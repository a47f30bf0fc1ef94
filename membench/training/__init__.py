"""Training of teachers (``membench train``); distillation lives in ``membench.training.distillers``."""
