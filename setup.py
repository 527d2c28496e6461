"""The build puts the compiled translations into the package (the .po sources stay in the
top-level ``locales/``); everything else is in pyproject.toml."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithCatalogs(build_py):
    """``build_py`` + ``locales/*/LC_MESSAGES/messages.po`` compiled into ``bot/locales/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable checkout compiles them at start, into a cache directory
        spec = importlib.util.spec_from_file_location("_locale_build", ROOT / "bot/locale_build.py")
        assert spec is not None and spec.loader is not None
        module: Any = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        written = module.compile_catalogs(ROOT / "locales", Path(self.build_lib) / "bot/locales")
        if not written:
            raise RuntimeError(
                "no translations compiled: locales/*/LC_MESSAGES/messages.po missing"
            )


setup(cmdclass={"build_py": BuildPyWithCatalogs})
