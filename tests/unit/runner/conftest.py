"""Runner tests: pure Python, no Spark. Every test starts with no recorded calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import runner_fixture_tasks


@pytest.fixture(autouse=True)
def _fresh_calls() -> Iterator[None]:
    runner_fixture_tasks.reset()
    yield
    runner_fixture_tasks.reset()
