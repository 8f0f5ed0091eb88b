"""The Spark session: the job's own on Databricks, a local Delta-enabled one elsewhere.

The local session is started once per process and reused by every task the runner executes
in that process. Its Delta jars are resolved by Spark's Ivy from Maven Central on the first
start and cached (``~/.ivy2.5.2``), so later starts need no network.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Extra Maven repository for Spark's resolver, for networks where Maven Central is mirrored.
MAVEN_REPO_ENV = "DEMAND_FORECASTING_MAVEN_REPO"

_lock = threading.Lock()

#: Settings that keep a one-machine Spark small and quiet. Delta's snapshot partitions default
#: to 50, which makes every log replay on a small table 50 tasks; 2 cores need 2.
LOCAL_SPARK_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.adaptive.enabled": "true",
}


def get_spark(on_databricks: bool, scratch_dir: Path | None = None) -> SparkSession:
    """Return the process's Spark session, starting a local one on first use.

    Args:
        on_databricks: use the runtime's session as it is (never configure it).
        scratch_dir: folder for Spark's local files and default warehouse (local only).

    Raises:
        RuntimeError: the local session could not start, with what to check.
    """
    if on_databricks:
        return SparkSession.builder.getOrCreate()
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        return _start_local(scratch_dir)


def _start_local(scratch_dir: Path | None) -> SparkSession:
    from delta import configure_spark_with_delta_pip

    # Spark's Python workers must run this interpreter (and its packages), not the system one.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[*]").appName("demand-forecasting")
    for key, value in LOCAL_SPARK_CONF.items():
        builder = builder.config(key, value)
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        builder = builder.config("spark.local.dir", str(scratch_dir / "tmp")).config(
            "spark.sql.warehouse.dir", str(scratch_dir / "warehouse")
        )
    repo = os.environ.get(MAVEN_REPO_ENV)
    if repo:
        builder = builder.config("spark.jars.repositories", repo)
    log.info("starting local Spark with Delta (first start downloads the Delta jars)")
    try:
        spark = configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as exc:  # the JVM's own message is in stderr above this one
        raise RuntimeError(
            "local Spark with Delta did not start. Check that Java 17 is on PATH "
            "(java -version) and that Spark can fetch io.delta:delta-spark from Maven "
            f"Central on first start (or set {MAVEN_REPO_ENV} to a reachable mirror). "
            f"Cause: {exc}"
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark
