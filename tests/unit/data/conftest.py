"""Fixtures of the data-pipeline tests (helpers live in data_support.py)."""

from __future__ import annotations

import pytest

from demand_forecasting.data.config import DatasetConfig, load_dataset_config


@pytest.fixture(scope="session")
def aus() -> DatasetConfig:
    """The bundled real dataset's config."""
    return load_dataset_config("aus_retail")
