"""Write the two reference sample sets of benchmarks/quality-reference/README.md into a folder.

real-1000.npz:   1,000 real digits drawn without replacement from the 1,497 non-held-out ones.
copier-1000.npz: 1,000 draws with replacement from the 64 training images of `teacher`
                 (digits:n=64): what a perfect copier of its training set would sample.
"""
import sys
from pathlib import Path

import numpy as np

from membench.data import load_dataset

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
pool = load_dataset("digits:n=1497").images
train = load_dataset("digits:n=64").images
np.savez(out / "real-1000.npz", images=pool[rng.choice(len(pool), 1000, replace=False)])
np.savez(out / "copier-1000.npz", images=train[rng.integers(0, len(train), 1000)])
