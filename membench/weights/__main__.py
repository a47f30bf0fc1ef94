"""``python -m membench.weights``: the weights table of docs/detectors.md."""
from membench.weights.table import docs_table

print(docs_table())
