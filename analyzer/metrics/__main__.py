"""``python -m analyzer.metrics``: print the README metric table generated from the registry."""
from . import markdown_table

print(markdown_table())
