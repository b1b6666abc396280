"""Examples: short scripts that run top to bottom (``python examples/NAME.py``)."""
