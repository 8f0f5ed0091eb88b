"""What the platform code asks of a Spark Connect session (serverless), without Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.errors import PySparkAttributeError

import demand_forecasting
from demand_forecasting.platform.spark import default_parallelism


class _ClassicSession:
    class sparkContext:  # the attribute name of a classic session
        defaultParallelism = 8


class _ConnectSession:
    """Spark Connect's session: JVM attributes raise, as pyspark.sql.connect's does."""

    def __getattr__(self, name: str) -> Any:
        raise PySparkAttributeError(
            errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": name}
        )


def test_default_parallelism_is_the_classic_session_s() -> None:
    assert default_parallelism(_ClassicSession()) == 8  # type: ignore[arg-type]


def test_default_parallelism_is_unknown_under_spark_connect() -> None:
    session = _ConnectSession()
    with pytest.raises(PySparkAttributeError):
        _ = session.sparkContext  # what score read directly before
    assert default_parallelism(session) is None  # type: ignore[arg-type]


def test_only_local_platform_code_reads_the_spark_context() -> None:
    """Step code runs on serverless too, where ``spark.sparkContext`` is not supported."""
    package = Path(demand_forecasting.__file__).parent
    local_only = {package / "platform" / "spark.py", package / "platform" / "jvm_archive.py"}
    readers = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path not in local_only and ".sparkContext" in path.read_text(encoding="utf-8")
    ]
    assert readers == [], f"use platform.spark.default_parallelism instead in {readers}"
