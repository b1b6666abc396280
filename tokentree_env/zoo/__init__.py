"""The built-in model zoo: small, self-trained teachers, primary and judge, shipped as package data."""

from tokentree_env.zoo.catalog import (
    CHAIN5_JUDGE,
    CHAIN5_PRIMARY,
    CHAIN5_TEACHERS,
    DEFAULT_JUDGE,
    DEFAULT_PRIMARY,
    DEFAULT_TEACHERS,
    ZOO,
    ZooModel,
)

__all__ = ["CHAIN5_JUDGE", "CHAIN5_PRIMARY", "CHAIN5_TEACHERS", "DEFAULT_JUDGE", "DEFAULT_PRIMARY", "DEFAULT_TEACHERS", "ZOO", "ZooModel"]
