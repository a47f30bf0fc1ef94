"""Samplers turn a model and per-sample noises into images; see ``karras`` and ``noise``."""
