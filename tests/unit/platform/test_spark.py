"""The local session's jars: resolved by Ivy once, then handed to Spark directly."""

from __future__ import annotations

from pathlib import Path

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
