"""Command lines: one module per command over a shared parser and runner (the top layer)."""
