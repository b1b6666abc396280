"""Quiet libraries: the loop and the benchmarks report their own progress, so the libraries' per-call
progress bars and deprecation notes are silenced."""

from __future__ import annotations


def quiet_libraries() -> None:
    """Silence datasets' and transformers' progress bars and transformers' FutureWarnings."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
