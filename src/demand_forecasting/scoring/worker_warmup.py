"""A local Python worker that arrives at score's grouped apply with its imports done.

The first thing a Spark Python worker does with a segment group is import what loading a
champion needs: this package's scoring code, MLflow and XGBoost (which imports scikit-learn
and SciPy when they are installed), 3-7 s of CPU on the 2-core VM. The local session forks its
workers from a daemon that has imported them already
(:mod:`demand_forecasting.platform.python_daemon`), and ``demand-forecasting run`` starts that
daemon while the first tasks run. When score runs without it (its entry point alone, a test),
the daemon starts with score's first Python task and its imports would be on the grouped
apply's path. So score starts a one-row job (:class:`WorkerWarmUp`, the same as
:func:`~demand_forecasting.platform.spark.start_python_daemon`) when the task starts: it starts
the daemon if need be and gets a worker, on the second core while the driver reads the feature
table and resolves the champions, and Spark hands that idle worker to the grouped apply. With
the daemon already up it costs a fork.

Only for a local session: on a cluster the grouped apply's tasks run on other executors'
workers, so waiting for one warmed worker would only add its seconds.
"""

from __future__ import annotations

import logging
import time

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from demand_forecasting.platform.spark import start_python_daemon

log = logging.getLogger(__name__)


class WorkerWarmUp:
    """A background one-task job that gets a Python worker (and its daemon) up.

    Call :meth:`wait` before the grouped apply's job: a worker still starting is busy, and
    the grouped apply would start a second one.
    """

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._started = time.perf_counter()
        self._thread = InheritableThread(target=self._run, name="score-worker-warmup")
        self._thread.daemon = True
        #: Why the warm-up job failed (None: it ran, or still runs).
        self.error: BaseException | None = None
        self._thread.start()

    def _run(self) -> None:
        try:
            start_python_daemon(self._spark)
        except Exception as exc:  # the grouped apply imports the same and reports it
            self.error = exc

    def wait(self) -> None:
        """Block until the warm-up job ended; a failure is logged, never raised."""
        self._thread.join()
        if self.error is not None:
            log.warning(
                "score: warming a Python worker failed (%s); the grouped apply starts its own",
                self.error,
            )
        else:
            log.info(
                "score: a Python worker is ready, imports done (%.1fs after the start)",
                time.perf_counter() - self._started,
            )
