"""Rules of the test suite itself: which tests CI's PostgreSQL + Redis pass leaves out."""

from __future__ import annotations

import pytest


def test_only_tests_that_cannot_see_the_back_end_are_marked_backend_independent(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "import pytest\n"
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'servers: needs servers')\n"
        "    config.addinivalue_line('markers', 'backend_independent: set by conftest')\n"
        "@pytest.fixture\n"
        "def databases(): return 'dbs'\n"
        "@pytest.fixture\n"
        "def database_url(databases): return 'url'\n"
        "@pytest.fixture\n"
        "def fake(): return 'fake'\n"
        "@pytest.fixture\n"
        "def harness(fake, database_url): return 'h'\n"
    )
    pytester.makepyfile(
        "import pytest\n"
        "def test_pure(tmp_path): pass\n"
        "def test_through_the_harness(harness): pass\n"
        "def test_own_harness_on_the_shared_fake(fake, tmp_path): pass\n"
        "def test_a_database(database_url): pass\n"
        "@pytest.mark.servers\n"
        "def test_servers(): pass\n"
    )
    args = ("-p", "no:cacheprovider", "-p", "no:asyncio")
    second_pass = pytester.runpytest_inprocess(*args, "-m", "not backend_independent", "-v")
    second_pass.assert_outcomes(passed=4, deselected=1)
    assert "test_pure" not in second_pass.stdout.str()
    pytester.runpytest_inprocess(*args, "-m", "backend_independent").assert_outcomes(
        passed=1, deselected=4
    )
