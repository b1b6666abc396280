"""The public surface is explicit: ``__all__`` lists it, and every name in it exists."""

import tokentree_env


def test_tokentree_env_exports_its_public_api():
    expected = {"TokenTreeEnv", "EnvState", "FEATURES", "HFTeacher", "Teacher", "ScriptedTeacher", "Judge",
                "Expander", "ExpansionConfig", "TokenTree", "WeightageRule", "RewardConfig", "Task", "Problem",
                "load_task", "builtin_task", "load_jsonl_task", "task_from_dataset", "load_model", "LoadedModel",
                "TokenTreeError", "ConfigError", "ModelNotFoundError", "TaskFormatError", "ContextTooLongError",
                "ModelOutputError", "EnvStateError", "InvalidActionError", "OpenAITeacher", "RemoteTeacherError",
                "PromptError", "TreeMismatchError", "VerifierLeakError", "PackageNameClashError", "PanelConfig"}
    assert set(tokentree_env.__all__) == expected
    assert all(hasattr(tokentree_env, name) for name in tokentree_env.__all__)


def test_every_error_derives_from_one_base():
    for name in tokentree_env.__all__:
        obj = getattr(tokentree_env, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tokentree_env.TokenTreeError)


def test_agents_exports_its_public_api():
    import agents

    assert {"MCTSAgent", "MCTSConfig", "EnsembleGreedy", "BestReference", "MajorityVote", "BestOfN", "BeamSearch",
            "EpisodeStore", "evaluate", "make_agent"} <= set(agents.__all__)
    assert all(hasattr(agents, name) for name in agents.__all__)


def test_asking_agents_for_a_name_of_openai_agents_names_the_clash():
    import pytest

    import agents

    with pytest.raises(tokentree_env.PackageNameClashError, match="openai-agents"):
        getattr(agents, "Runner")  # noqa: B009 - the attribute access is what is tested
    with pytest.raises(ImportError, match="both install under the import name `agents`"):
        from agents import function_tool  # noqa: F401
    assert not hasattr(agents, "no_such_name")  # other names: a plain AttributeError
