"""Package data: built-in registry entries and committed checkpoints (read-only)."""
