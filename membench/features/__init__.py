"""Embedders: images -> vectors for similarity detectors (and quality metrics).

One module per embedder; see ``base.Embedder`` for the interface and ``cache`` for the
per-(dataset, embedder) cache of training-set embeddings.
"""
from membench.features.base import Embedder, make_embedder

__all__ = ["Embedder", "make_embedder"]
