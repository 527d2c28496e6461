"""The test suite (a package, so that ``tests.conftest`` is the one module pytest loads)."""
