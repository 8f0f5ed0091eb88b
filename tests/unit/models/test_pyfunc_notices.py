"""The two notices mlflow.pyfunc prints for every logged segment model are dropped; the
rest of what it logs is not."""

from __future__ import annotations

import logging

import pytest

from demand_forecasting.models import pyfunc  # noqa: F401 - installs the filter


def test_the_per_model_notices_are_dropped_and_other_messages_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("mlflow.pyfunc")
    with caplog.at_level(logging.INFO, logger="mlflow.pyfunc"):
        logger.warning(
            "Passing a Python object as `python_model` causes it to be serialized using "
            "CloudPickle, which requires exactly the same Python environment..."
        )
        logger.info("Validating input example against model signature")
        logger.warning("The model's requirements could not be inferred")

    assert [r.getMessage() for r in caplog.records] == [
        "The model's requirements could not be inferred"
    ]
