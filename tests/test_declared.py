"""A benchmark's declared settings: a resume runs the declared configuration and models, or is refused naming the
differences."""

import pytest

from benchmarks.declared import declare_once
from tokentree_env.errors import ConfigError


def test_a_resume_reads_the_declaration_and_a_changed_setting_or_model_is_refused_by_name(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"abc")
    made = []
    config = {"task": "chain5", "n": 200, "out": "here", "workers": 2}
    first = declare_once(tmp_path / "declared.json", config, [str(model)], lambda: made.append(1) or {"unit": 7})
    again = declare_once(tmp_path / "declared.json", config | {"out": "elsewhere", "workers": 1}, [str(model)],
                         lambda: made.append(2) or {})
    assert made == [1] and again == first and first["unit"] == 7  # declared once, read back on resume
    with pytest.raises(ConfigError, match=r"n: declared 200, now 100"):
        declare_once(tmp_path / "declared.json", config | {"n": 100}, [str(model)], dict)
    (model / "weights.bin").write_bytes(b"abd")
    with pytest.raises(ConfigError, match="its files changed"):
        declare_once(tmp_path / "declared.json", config, [str(model)], dict)
