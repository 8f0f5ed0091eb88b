"""Spark's Python worker daemon for the local session, with the workers' imports done once.

A local Spark forks every Python worker from one daemon process (``pyspark.daemon``, started
when the first Python task runs). Each fresh worker then imports what its function needs:
for training and scoring that is MLflow, XGBoost (with scikit-learn and SciPy), pandas and
pyarrow, 3-7 s of CPU per worker on the 2-core VM, paid again by every new worker (Spark
stops a worker after a minute idle, and a job with two tasks forks two). The local session
runs this module as its daemon instead (``spark.python.daemon.module``): it imports
:data:`PRELOADED` once, then runs PySpark's own daemon, so every forked worker starts with
those modules in memory. ``demand-forecasting run`` starts the daemon in the background
while the first tasks run (:func:`demand_forecasting.platform.spark.start_python_daemon`).

PySpark's daemon imports its worker module only after each fork, to be sure no thread runs
in the forking process. The modules here start one native thread (pyarrow's jemalloc
background thread, which jemalloc's own fork handlers account for); with
``OMP_NUM_THREADS=1`` (the local session's worker environment) NumPy's BLAS starts none.

A module that fails to import here is reported on stderr (Spark's log) and left to the
worker, which imports it, or fails, as it would without this daemon. Local only: a
Databricks cluster keeps its own daemon.
"""

from __future__ import annotations

import importlib
import sys

#: What the package's Python workers import: training's and evaluation's group functions,
#: and scoring's with the pyfunc that ``mlflow.pyfunc.load_model`` loads.
PRELOADED = (
    "pandas",
    "pyarrow",
    "pyspark.worker",
    "mlflow.pyfunc",
    "demand_forecasting.models.pyfunc",
    "demand_forecasting.models.segment_training",
    "demand_forecasting.models.segment_evaluation",
    "demand_forecasting.scoring.score",
    "demand_forecasting.monitoring.drift",
)


def preload(modules: tuple[str, ...] = PRELOADED) -> list[str]:
    """Import ``modules``; return the ones that failed (each reported on stderr)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the worker imports it again and reports it there
            failed.append(name)
            sys.stderr.write(
                f"demand_forecasting python daemon: importing {name} failed "
                f"({type(exc).__name__}: {exc}); workers will import it themselves\n"
            )
    return failed


def main() -> None:
    """Preload, then hand over to PySpark's daemon (it prints its port to Spark)."""
    preload()
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
