"""The small-LM judge: is the answer complete (P(EOS | context)), and is it right (a y/n verdict)."""

from tokentree_env.judge.judge import Judge, worked_verdicts

__all__ = ["Judge", "worked_verdicts"]
