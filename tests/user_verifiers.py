"""A user verifier module, imported by name ("tests.user_verifiers:always_half") in the task tests."""


def always_half(completion: str, answer: str) -> float:
    return 0.5
