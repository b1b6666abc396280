"""Specification of model loading: zoo names, local paths, and clear errors offline."""

import pytest

from tokentree_env.errors import ModelNotFoundError, TokenTreeError
from tokentree_env.models import load_model, resolve_model_path


def test_a_misspelt_zoo_name_suggests_the_right_one():
    with pytest.raises(ModelNotFoundError, match="Did you mean 'zoo:teacher-llama'"):
        resolve_model_path("zoo:teacher-lama")


def test_an_unreachable_hub_id_offline_raises_a_typed_error_naming_it():
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-model") as info:
        load_model("no-such-org/no-such-model")
    assert isinstance(info.value, TokenTreeError)
    assert "offline" in str(info.value)


def test_a_missing_local_path_raises_a_typed_error(tmp_path):
    with pytest.raises(ModelNotFoundError):
        load_model(str(tmp_path / "nothing-here"))


def test_a_local_path_loads_like_its_zoo_name():
    path = resolve_model_path("zoo:primary")
    assert load_model(path).model.config.vocab_size == load_model("zoo:primary").model.config.vocab_size
