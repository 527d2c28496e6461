"""Shared by the MAX tests: aiogram-max is there only on Python >= 3.12 with the `max` extra.

Elsewhere the MAX tests skip; in the CI pass that runs them (MAX_TESTS_REQUIRED=1, Python 3.12
with `.[dev,max]`) a missing aiogram-max is an error, never a skip."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require_aiogram_max() -> ModuleType:
    if os.environ.get("MAX_TESTS_REQUIRED", "").lower() in ("1", "true", "yes"):
        return importlib.import_module("aiogram_max")
    return pytest.importorskip("aiogram_max", reason="MAX needs Python >= 3.12 and .[max]")
