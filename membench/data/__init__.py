"""Datasets: training images (N, C, H, W) in [-1, 1] plus a disjoint held-out split."""
from membench.data.datasets import Dataset, load_dataset, load_images

__all__ = ["Dataset", "load_dataset", "load_images"]
