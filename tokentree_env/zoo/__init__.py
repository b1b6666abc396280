"""The built-in model zoo: small, self-trained teachers, primary and judge, shipped as package data."""

from tokentree_env.zoo.catalog import DEFAULT_JUDGE, DEFAULT_PRIMARY, DEFAULT_TEACHERS, ZOO, ZooModel

__all__ = ["DEFAULT_JUDGE", "DEFAULT_PRIMARY", "DEFAULT_TEACHERS", "ZOO", "ZooModel"]
