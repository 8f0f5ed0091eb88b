"""The local session's jars: resolved by Ivy once, then handed to Spark directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demand_forecasting.platform import spark as local_spark


def test_jar_list_file_depends_on_what_decides_the_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(local_spark.JAR_CACHE_ENV, str(tmp_path))
    base = local_spark.jar_list_file("io.delta:delta-spark_4.2_2.13:4.4.0", {})
    assert base.parent == tmp_path / "demand_forecasting"
    assert base == local_spark.jar_list_file("io.delta:delta-spark_4.2_2.13:4.4.0", {})
    assert base != local_spark.jar_list_file("io.delta:delta-spark_4.2_2.13:4.5.0", {})
    assert base != local_spark.jar_list_file(
        "io.delta:delta-spark_4.2_2.13:4.4.0", {"spark.jars.repositories": "https://mirror"}
    )
    assert base != local_spark.jar_list_file(
        "io.delta:delta-spark_4.2_2.13:4.4.0", {"spark.jars.ivy": str(tmp_path / "ivy")}
    )


def test_remembered_jars_are_used_only_while_every_jar_exists(tmp_path: Path) -> None:
    jar_list = tmp_path / "cache" / "spark-jars-x.txt"
    assert local_spark.remembered_jars(jar_list) == []
    jars = [tmp_path / "a b.jar", tmp_path / "c.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    uris = ",".join(f"file://{j}" for j in jars)
    local_spark.remember_jars(jar_list, uris)
    assert local_spark.remembered_jars(jar_list) == [f"file://{j}" for j in jars]
    jars[1].unlink()  # e.g. the Ivy cache was cleaned: resolve again
    assert local_spark.remembered_jars(jar_list) == []
    local_spark.remember_jars(tmp_path / "other.txt", "")
    assert not (tmp_path / "other.txt").exists()


def test_the_running_session_remembered_its_jars(spark: object) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    conf = dict(spark.sparkContext.getConf().getAll())
    jar_list = local_spark.jar_list_file(local_spark.delta_packages(), conf)
    remembered = local_spark.remembered_jars(jar_list)
    assert remembered and remembered == conf["spark.jars"].split(",")
    assert any("delta-spark" in j for j in remembered)


def test_the_local_session_logs_through_the_packaged_log4j2_file(spark: object) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    conf = spark.sparkContext.getConf()
    options = conf.get("spark.driver.extraJavaOptions") or ""
    assert f"-Dlog4j2.configurationFile={local_spark.LOG4J2_FILE.as_uri()}" in options
    assert local_spark.LOG4J2_FILE.is_file()
    # Scratch space comes from the environment: spark.local.dir would warn at every start.
    assert conf.get("spark.local.dir") is None


def test_python_workers_of_the_local_session_get_one_openmp_thread(spark: object) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)

    def threads(batches):  # type: ignore[no-untyped-def]
        import os

        import pandas as pd

        for _ in batches:
            pass
        yield pd.DataFrame({"threads": [os.environ.get("OMP_NUM_THREADS", "")]})

    rows = spark.range(1, numPartitions=1).mapInPandas(threads, "threads string").collect()
    assert [r["threads"] for r in rows] == ["1"]


def test_conf_overrides_replace_local_settings_key_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(local_spark.SPARK_CONF_ENV, raising=False)
    assert local_spark.conf_overrides() == {}
    monkeypatch.setenv(
        local_spark.SPARK_CONF_ENV,
        '{"spark.sql.codegen.wholeStage": "true", "spark.sql.shuffle.partitions": "8"}',
    )
    assert local_spark.conf_overrides() == {
        "spark.sql.codegen.wholeStage": "true",
        "spark.sql.shuffle.partitions": "8",
    }


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("spark.sql.shuffle.partitions=8", "not valid JSON"),
        ('["spark.sql.shuffle.partitions"]', "JSON object whose keys and values are strings"),
        ('{"spark.sql.shuffle.partitions": 8}', "JSON object whose keys and values are strings"),
    ],
)
def test_malformed_conf_overrides_say_what_to_give(
    monkeypatch: pytest.MonkeyPatch, raw: str, says: str
) -> None:
    monkeypatch.setenv(local_spark.SPARK_CONF_ENV, raw)
    with pytest.raises(ValueError, match=says) as caught:
        local_spark.conf_overrides()
    assert local_spark.SPARK_CONF_ENV in str(caught.value)


def test_the_local_session_evaluates_without_generated_code(spark: object) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    assert isinstance(spark, SparkSession)

    def root_operator() -> str:
        frame = spark.range(10).select((F.col("id") * 2).alias("twice")).where("twice > 5")
        assert [r["twice"] for r in frame.collect()] == [6, 8, 10, 12, 14, 16, 18]
        return str(frame._jdf.queryExecution().executedPlan().getClass().getSimpleName())

    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    assert root_operator() == "ProjectExec"
    # The check can tell: with Spark's defaults the same query runs as generated code.
    try:
        spark.conf.set("spark.sql.codegen.wholeStage", "true")
        spark.conf.set("spark.sql.codegen.factoryMode", "FALLBACK")
        assert root_operator() == "WholeStageCodegenExec"
    finally:
        spark.conf.set("spark.sql.codegen.wholeStage", "false")
        spark.conf.set("spark.sql.codegen.factoryMode", "NO_CODEGEN")


def test_the_session_is_shared_with_and_made_active_in_other_threads(spark: object) -> None:
    import threading

    from pyspark.sql import SparkSession

    seen: dict[str, object] = {}

    def other_thread() -> None:
        # A new thread is pinned to a new JVM thread, which has no active session yet.
        seen["before"] = SparkSession.getActiveSession()
        seen["got"] = local_spark.get_spark(on_databricks=False)
        seen["after"] = SparkSession.getActiveSession()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(timeout=120)
    assert seen["before"] is None
    assert seen["got"] is spark
    assert seen["after"] is spark


def test_a_background_start_hands_its_session_to_get_spark(spark: object) -> None:
    thread = local_spark.start_local_in_background(Path("unused-while-a-session-runs"))
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert local_spark.get_spark(on_databricks=False) is spark


def test_generated_code_is_on_inside_the_block_and_restored_after(spark: object) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    assert isinstance(spark, SparkSession)

    def root_operator() -> str:
        frame = spark.range(10).select((F.col("id") * 2).alias("twice")).where("twice > 5")
        frame.collect()
        return str(frame._jdf.queryExecution().executedPlan().getClass().getSimpleName())

    with local_spark.generated_code(spark):
        assert root_operator() == "WholeStageCodegenExec"
    assert root_operator() == "ProjectExec"
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    with pytest.raises(ZeroDivisionError), local_spark.generated_code(spark):
        raise ZeroDivisionError  # a failed block restores the settings too
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"


def test_python_workers_are_forked_from_the_daemon_that_preloaded_their_modules(
    spark: object,
) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)

    def origin(batches):  # type: ignore[no-untyped-def]
        import sys

        import pandas as pd

        for _ in batches:
            pass
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        yield pd.DataFrame(
            {
                "main": [spec.name if spec else ""],
                "preloaded": ["demand_forecasting.models.segment_training" in sys.modules],
            }
        )

    local_spark.start_python_daemon(spark)
    rows = spark.range(1, numPartitions=1).mapInPandas(origin, "main string, preloaded boolean")
    assert [tuple(r) for r in rows.collect()] == [
        ("demand_forecasting.platform.python_daemon", True)
    ]


def test_the_daemon_preloads_every_module_it_lists(capsys: pytest.CaptureFixture[str]) -> None:
    from demand_forecasting.platform import python_daemon

    assert python_daemon.preload() == []
    assert python_daemon.preload(("json", "demand_forecasting.no_such_module")) == [
        "demand_forecasting.no_such_module"
    ]
    err = capsys.readouterr().err
    assert "importing demand_forecasting.no_such_module failed (ModuleNotFoundError" in err
    assert "workers will import it themselves" in err


def test_rows_frame_gives_what_create_data_frame_gives_on_the_same_rows(spark: object) -> None:
    from datetime import date, datetime, timezone

    import numpy as np
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    schema = (
        "name string, month date, at timestamp, n long, share double, flag boolean, "
        "edges array<double>"
    )
    at = datetime(2016, 2, 1, 13, 45, 7, 250000, tzinfo=timezone.utc)
    rows = [
        ("a", date(2016, 2, 1), at, 3, 0.25, True, [0.0, 1.5]),
        ("b", None, None, None, float("nan"), None, None),
        (None, date(1999, 12, 1), at, 7, 2.0, False, []),
    ]
    frame = local_spark.rows_frame(spark, rows, schema)
    assert frame.schema == spark.createDataFrame(rows[:2], schema).schema
    got = [tuple(r) for r in frame.collect()]
    want = [tuple(r) for r in spark.createDataFrame(rows, schema).collect()]
    assert [str(v) for v in got[1]] == [str(v) for v in want[1]]  # NaN != NaN
    assert got[0] == want[0] and got[2] == want[2]
    assert got[0][2] == datetime(2016, 2, 1, 13, 45, 7, 250000)  # UTC session, naive back
    numpy_row = (None, date(1999, 12, 1), at, np.int64(7), np.float64(2.0), np.bool_(False), [])
    assert local_spark.rows_frame(spark, [numpy_row], schema).collect() == [got[2]]
    assert local_spark.rows_frame(spark, [], schema).count() == 0
    with pytest.raises(ValueError, match="rows have 2 values, the schema 7 columns"):
        local_spark.rows_frame(spark, [("a", None)], schema)
    with pytest.raises(ValueError, match="not a struct"):
        local_spark.rows_frame(spark, [], "int")


def test_rows_frame_takes_pandas_frames_as_spark_s_arrow_path_does(spark: object) -> None:
    from datetime import date

    import pandas as pd
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    schema = "segment string, month date, horizon int, wape double"
    frame = pd.DataFrame(
        {
            "wape": [0.5, float("nan")],
            "segment": ["a", None],
            "month": [date(2016, 1, 1), date(2016, 2, 1)],
            "horizon": [1, 12],
            "extra": ["not", "kept"],
        }
    )
    got = local_spark.rows_frame(spark, frame, schema)
    assert got.columns == ["segment", "month", "horizon", "wape"]
    want = spark.createDataFrame(frame.drop(columns="extra")[got.columns], schema)
    assert got.collect() == want.collect()  # NaN -> null on both
    assert got.collect()[1]["wape"] is None
    empty = local_spark.rows_frame(spark, frame.iloc[:0], schema)
    assert empty.schema == got.schema and empty.count() == 0
    with pytest.raises(ValueError, match="no column"):
        local_spark.rows_frame(spark, frame.drop(columns="horizon"), schema)


def test_the_daemon_start_job_is_described_and_the_caller_s_description_kept(spark: Any) -> None:
    sc = spark.sparkContext
    scheduler = sc._jsc.sc().dagScheduler()
    first = int(scheduler.nextJobId())
    sc.setJobDescription("the caller's own")
    try:
        local_spark.start_python_daemon(spark)
        assert sc.getLocalProperty("spark.job.description") == "the caller's own"
    finally:
        sc.setJobDescription(None)
    store = sc._jsc.sc().statusStore()
    descriptions = [
        store.job(job_id).description() for job_id in range(first, int(scheduler.nextJobId()))
    ]
    assert [d.get() for d in descriptions if d.isDefined()] == [local_spark.DAEMON_JOB_DESCRIPTION]
