"""Terminal detection: EOS, the punctuation filter plus the judge, and the length limit."""

from tokentree_env.terminal.detector import TerminalConfig, TerminalDetector

__all__ = ["TerminalConfig", "TerminalDetector"]
