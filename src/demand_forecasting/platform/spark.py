"""The Spark session: the job's own on Databricks, a local Delta-enabled one elsewhere.

The local session is started once per process and reused by every task the runner executes
in that process. Its Delta jars are resolved by Spark's Ivy from Maven Central on the first
start and cached (``~/.ivy2.5.2``). The list of jars that resolution produced is remembered
(:func:`jar_list_file`), so later starts hand Spark those jars directly: no Ivy resolution
(seconds, and a 60-line report on every start), no network. If a remembered jar is missing,
the start resolves again. Once per machine a start also records the classes the JVM loads, so
that later starts map Spark's classes from a class-data-sharing archive
(:mod:`demand_forecasting.platform.jvm_archive`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyspark
from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from demand_forecasting.platform import jvm_archive

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Extra Maven repository for Spark's resolver, for networks where Maven Central is mirrored.
MAVEN_REPO_ENV = "DEMAND_FORECASTING_MAVEN_REPO"
#: Local Spark settings that replace the defaults below (a JSON object of strings).
SPARK_CONF_ENV = "DEMAND_FORECASTING_SPARK_CONF"
#: Local Spark's logging: warnings and errors, without the start-up notices (a
#: ``-Dlog4j2.configurationFile`` in DEMAND_FORECASTING_SPARK_CONF's driver options wins).
LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")
#: Folder for the remembered jar lists and the class archive (default ``$XDG_CACHE_HOME`` or
#: ``~/.cache``).
JAR_CACHE_ENV = "DEMAND_FORECASTING_CACHE"

_lock = threading.Lock()
#: The local session this process started (or found), for every thread that asks.
_local_session: SparkSession | None = None

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
    # Spark lists more than 32 files or folders with a Spark job of one task per path. Locally
    # those tasks run in this JVM on the same few cores, and the job costs more than the
    # listing: a restarted landing stream re-reads its last batch's files (Spark calls getBatch
    # on restart), and for the first month after the history's 405 files that job took 6.8 s.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "10000",
    # With the UI off nobody reads the plan description Spark renders into every query's
    # start event (and again at every adaptive re-plan); the default, "formatted", lists each
    # node's arguments as well as the tree. Rendering was in 36 of 389 busy stack samples of the
    # driver's query threads over a warm month; "simple" (the tree only) cut the month's JVM
    # CPU by ~8 % (benchmarks/README.md, Session 7). df.explain() is unaffected.
    "spark.sql.ui.explainMode": "simple",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.adaptive.enabled": "true",
    # The local driver is a short-lived JVM on a few cores doing many small jobs: the C2
    # compiler's threads compete with the work and rarely pay off before the process ends
    # (measured: Spark start and the first Delta commit about 2x faster), and one GC thread
    # is plenty for a 4 GB heap. The heap starts at 1 GB with a 384 MB young generation
    # instead of growing from ~1/64 of RAM: fewer young collections and no full collections
    # while it grows (a warm monthly job, with the batched telemetry of the same session:
    # GC 11.0 s -> 6.4 s, safepoints 11.6 s -> 6.9 s, at load 4-7).
    #
    # CompileThresholdScaling=4 makes a method wait for 4x the calls before C1 compiles it: a
    # monthly run touches tens of thousands of methods a few hundred times each (Catalyst,
    # Delta's log handling), and compiling them cost more than interpreting them. JIT time
    # over a warm month 32-38 s -> 9-12 s (benchmarks/README.md, Session 5).
    "spark.driver.extraJavaOptions": (
        "-XX:TieredStopAtLevel=1 -XX:CompileThresholdScaling=4 -XX:+UseSerialGC -Xms1g -Xmn384m"
    ),
    # Evaluate expressions and plans without generating Java code: every distinct query
    # otherwise compiles its own classes with Janino, then loads and JIT-compiles them, for
    # tables of a few hundred to a few hundred thousand rows. With the setting above, JVM CPU
    # over a warm month fell 118-136 s -> 96 s and loaded classes 12.4k -> 10.9k. Spark's
    # interpreted paths give the same results (its own test suite runs both); on big local
    # data set them back with DEMAND_FORECASTING_SPARK_CONF (see conf_overrides); first loads
    # of the data tasks switch them back themselves (generated_code).
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    # A Python task has one core, so its worker gets one OpenMP thread: on a cluster Spark sets
    # this itself (to the executor's cores, SPARK-28843), but not for a local master, where each
    # worker's XGBoost started a thread per core of the machine. For score's tiny per-segment
    # matrices the thread team cost more than the work: loading and forecasting the 46
    # champions took 6.4-6.8 s of a worker's CPU on the busy 2-core VM, 3.9-4.4 s with one
    # thread, with the same numbers.
    "spark.executorEnv.OMP_NUM_THREADS": "1",
    # Python workers are forked from a daemon that has already imported what they need
    # (MLflow, XGBoost, pandas, this package's group functions): see python_daemon.
    "spark.python.daemon.module": "demand_forecasting.platform.python_daemon",
}


def get_spark(on_databricks: bool, scratch_dir: Path | None = None) -> SparkSession:
    """Return the process's Spark session, starting a local one on first use.

    Args:
        on_databricks: use the runtime's session as it is (never configure it).
        scratch_dir: folder for Spark's local files and default warehouse (local only).

    Raises:
        RuntimeError: the local session could not start, with what to check.
        ValueError: ``$DEMAND_FORECASTING_SPARK_CONF`` is malformed (:func:`conf_overrides`).
    """
    if on_databricks:
        return SparkSession.builder.getOrCreate()
    global _local_session
    with _lock:
        session = _local_session
        if session is None or SparkContext._active_spark_context is not session.sparkContext:
            session = SparkSession.getActiveSession() or _start_local(scratch_dir)
            _local_session = session
        # Spark's "active session" is per thread (the JVM thread py4j pins to this Python
        # thread): make it this thread's too, for code that asks for it (Delta, MLflow).
        session.sparkContext._jvm.SparkSession.setActiveSession(session._jsparkSession)  # type: ignore[union-attr]
        return session


def default_parallelism(spark: SparkSession) -> int | None:
    """The session's default parallelism (its cores), or None where Spark does not say.

    Only a classic session has a ``sparkContext``: under Spark Connect (serverless compute,
    standard access mode) reading it raises ``JVM_ATTRIBUTE_NOT_SUPPORTED``, and Databricks
    documents ``spark.sparkContext`` as not supported on serverless. Callers then choose
    their own number of tasks.
    """
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect: no SparkContext in this process
        return None


#: Spark's own defaults for the settings with which LOCAL_SPARK_CONF turns code generation off.
CODEGEN_DEFAULTS = {
    "spark.sql.codegen.wholeStage": "true",
    "spark.sql.codegen.factoryMode": "FALLBACK",
}


@contextmanager
def generated_code(spark: SparkSession) -> Iterator[None]:
    """Run the block with Spark's code generation on (Spark's defaults), then restore.

    The local session evaluates without generated code (:data:`LOCAL_SPARK_CONF`), which is
    faster for the small queries of a monthly increment and slower for a pass over a whole
    history: the first build of the feature tables took 78 s interpreted and 37 s with
    generated code. A task wraps such a pass in this. Session settings are shared by every
    thread, so use it only where nothing else runs queries meanwhile (the local runner runs
    one task at a time).
    """
    saved = {key: spark.conf.get(key, None) for key in CODEGEN_DEFAULTS}
    for key, value in CODEGEN_DEFAULTS.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, held in saved.items():
            if held is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, held)


def _pass_through(batches: Iterator[Any]) -> Iterator[Any]:
    yield from batches


#: Description of the one-task job that starts the Python worker daemon (it runs beside the
#: tasks, so profiles can tell it from theirs).
DAEMON_JOB_DESCRIPTION = "start the Python worker daemon"


def start_python_daemon(spark: SparkSession) -> None:
    """Start the local session's Python worker daemon now, with a one-task job.

    Spark starts the daemon (:mod:`demand_forecasting.platform.python_daemon`, which imports
    the workers' modules first) when a task first needs a Python worker, and keeps it for the
    session. Started early, its imports run while other work goes on. The job carries
    :data:`DAEMON_JOB_DESCRIPTION` (a property of the calling thread, restored after).
    """
    sc = spark.sparkContext
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(DAEMON_JOB_DESCRIPTION)
    try:
        spark.range(1, numPartitions=1).mapInPandas(_pass_through, "id long").collect()
    finally:
        sc.setJobDescription(previous)  # type: ignore[arg-type]


def start_local_in_background(scratch_dir: Path, python_daemon: bool = False) -> threading.Thread:
    """Start the local session in a daemon thread; :func:`get_spark` callers wait for it.

    The JVM boots in its own process, so a runner that starts it first can import its tasks'
    modules meanwhile (seconds each) instead of one after the other. If the start fails,
    the thread logs it at debug level and the next :func:`get_spark` tries again and raises
    the error where a task would have seen it.

    Args:
        scratch_dir: as for :func:`get_spark`: the one the tasks will pass.
        python_daemon: then also start the Python worker daemon (:func:`start_python_daemon`).
    """

    def start() -> None:
        try:
            spark = get_spark(on_databricks=False, scratch_dir=scratch_dir)
            if python_daemon:
                start_python_daemon(spark)
        except Exception:  # the first task's own start raises it
            log.debug("starting local Spark in the background failed", exc_info=True)

    thread = threading.Thread(target=start, name="start-local-spark", daemon=True)
    thread.start()
    return thread


#: The ``SPARK_LOCAL_DIRS`` this process set, if any.
_local_dirs: str | None = None


def _set_local_dirs(folder: Path) -> None:
    """Spark's scratch space, through the environment rather than ``spark.local.dir`` (that
    setting makes Spark warn at every start that a cluster manager would override it). A
    ``SPARK_LOCAL_DIRS`` the user set is left as it is."""
    global _local_dirs
    if os.environ.get("SPARK_LOCAL_DIRS") in (None, _local_dirs):
        _local_dirs = os.environ["SPARK_LOCAL_DIRS"] = str(folder)


def _start_local(scratch_dir: Path | None) -> SparkSession:
    # Spark's Python workers must run this interpreter (and its packages), not the system one.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {**LOCAL_SPARK_CONF, **conf_overrides()}
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        _set_local_dirs(scratch_dir / "tmp")
        conf["spark.sql.warehouse.dir"] = str(scratch_dir / "warehouse")
    options = conf["spark.driver.extraJavaOptions"]
    if "log4j2.configurationFile" not in options:
        conf["spark.driver.extraJavaOptions"] = (
            f"{options} -Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}"
        )
    repo = os.environ.get(MAVEN_REPO_ENV)
    if repo:
        conf["spark.jars.repositories"] = repo
    archive = jvm_archive.plan(cache_folder(), Path(pyspark.__file__).parent / "jars")
    if archive.options:
        options = " ".join(archive.options)
        conf["spark.driver.extraJavaOptions"] = f"{conf['spark.driver.extraJavaOptions']} {options}"
    packages = delta_packages()
    jar_list = jar_list_file(packages, conf)
    jars = remembered_jars(jar_list)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    else:
        conf["spark.jars.packages"] = packages
        log.info(
            "starting local Spark; resolving %s (the first start downloads the jars)", packages
        )
    builder = SparkSession.builder.master("local[*]").appName("demand-forecasting")
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM's own message is in stderr above this one
        raise RuntimeError(
            "local Spark with Delta did not start. Check that Java 17 is on PATH "
            "(java -version) and that Spark can fetch io.delta:delta-spark from Maven "
            f"Central on first start (or set {MAVEN_REPO_ENV} to a reachable mirror). "
            f"Cause: {exc}"
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    archive.started(spark)
    if not jars:
        remember_jars(jar_list, spark.sparkContext.getConf().get("spark.jars", ""))
    return spark


def conf_overrides() -> dict[str, str]:
    """Local Spark settings from ``$DEMAND_FORECASTING_SPARK_CONF`` (a JSON object), if set.

    They replace the defaults of :data:`LOCAL_SPARK_CONF` key by key, e.g. to turn code
    generation back on for a large local dataset:
    ``DEMAND_FORECASTING_SPARK_CONF='{"spark.sql.codegen.wholeStage": "true",
    "spark.sql.codegen.factoryMode": "FALLBACK"}'``.

    Raises:
        ValueError: the variable is not a JSON object of strings.
    """
    raw = os.environ.get(SPARK_CONF_ENV, "").strip()
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{SPARK_CONF_ENV} is not valid JSON ({exc}); give an object of Spark settings, "
            'e.g. {"spark.sql.shuffle.partitions": "8"}'
        ) from exc
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise ValueError(
            f"{SPARK_CONF_ENV} must be a JSON object whose keys and values are strings, "
            'e.g. {"spark.sql.shuffle.partitions": "8"}'
        )
    return values


def delta_packages() -> str:
    """The Maven coordinates of the Delta jars that match the installed ``delta-spark``."""
    from delta import configure_spark_with_delta_pip

    probe = configure_spark_with_delta_pip(SparkSession.Builder())
    return str(probe._options["spark.jars.packages"])


def jar_list_file(packages: str, conf: dict[str, str]) -> Path:
    """Where the jars that ``packages`` resolved to are remembered.

    The name hashes everything that decides the resolution (coordinates, repositories, Ivy
    folder), so a new Delta version or another mirror resolves afresh.
    """
    key = "|".join(
        [packages, conf.get("spark.jars.repositories", ""), conf.get("spark.jars.ivy", "")]
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return cache_folder() / f"spark-jars-{digest}.txt"


def cache_folder() -> Path:
    """This machine's cache of Spark start-up files (jar lists, the class archive)."""
    base = os.environ.get(JAR_CACHE_ENV) or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "demand_forecasting"


def remembered_jars(jar_list: Path) -> list[str]:
    """The remembered jar URIs, or ``[]`` when there are none or one of them is gone."""
    try:
        jars = [line for line in jar_list.read_text(encoding="utf-8").splitlines() if line]
    except OSError:
        return []
    local = [Path(j.removeprefix("file://").removeprefix("file:")) for j in jars]
    if not jars or not all(p.is_file() and p.stat().st_size > 0 for p in local):
        return []
    return jars


def remember_jars(jar_list: Path, jars: str) -> None:
    """Remember the comma-separated ``spark.jars`` a resolution produced (best effort)."""
    entries = [j for j in jars.split(",") if j]
    if not entries:
        return
    try:
        jar_list.parent.mkdir(parents=True, exist_ok=True)
        partial = jar_list.with_name(f".{jar_list.name}.tmp")
        partial.write_text("\n".join(entries) + "\n", encoding="utf-8")
        os.replace(partial, jar_list)
    except OSError as exc:
        log.warning("could not remember the resolved Delta jars in %s: %s", jar_list, exc)


def rows_frame(
    spark: SparkSession, rows: Sequence[Sequence[Any]] | pd.DataFrame, schema: str | StructType
) -> DataFrame:
    """A DataFrame of ``rows`` held by the driver: tuples in ``schema``'s column order, or a
    pandas frame with (at least) ``schema``'s columns.

    ``spark.createDataFrame`` on a list, or on an empty pandas frame, pickles the rows into a
    Python RDD that a Python worker must unpickle (on a local session: a worker process, and a
    daemon of its own, seconds); from an Arrow table the JVM reads them itself. Arrow gets its
    types from ``schema``; give timestamps as time-zone-aware datetimes (a naive one is taken
    as UTC). From pandas, NaN becomes null, as in Spark's own Arrow path.

    Raises:
        ValueError: ``schema`` is not a struct, or the rows do not have its columns.
    """
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import _parse_datatype_string

    struct = schema if isinstance(schema, StructType) else _parse_datatype_string(schema)
    if not isinstance(struct, StructType):
        raise ValueError(f"rows_frame: {schema!r} is not a struct (a list of columns)")
    arrow_schema = to_arrow_schema(struct, timezone=spark.conf.get("spark.sql.session.timeZone"))
    if isinstance(rows, pd.DataFrame):
        missing = [c for c in struct.fieldNames() if c not in rows.columns]
        if missing:
            raise ValueError(f"rows_frame: the frame has no column(s) {', '.join(missing)}")
        table = pa.Table.from_pandas(
            rows[struct.fieldNames()], schema=arrow_schema, preserve_index=False
        )
        return spark.createDataFrame(table, schema=struct)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in struct.fields]
    if len(columns) != len(struct.fields):
        raise ValueError(
            f"rows_frame: rows have {len(columns)} values, the schema {len(struct.fields)} "
            f"columns ({', '.join(struct.fieldNames())})"
        )
    arrays = [
        pa.array(list(values), type=field.type)
        for values, field in zip(columns, arrow_schema, strict=True)
    ]
    return spark.createDataFrame(pa.Table.from_arrays(arrays, schema=arrow_schema), schema=struct)
