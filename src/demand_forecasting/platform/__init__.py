"""Where the code runs: Spark, tables, MLflow and paths, built once per process.

Step code receives a :class:`~demand_forecasting.platform.context.RunContext` and never asks
whether it runs on Databricks or on a laptop.
"""

from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.platform.detect import on_databricks

__all__ = ["RunContext", "build_context", "on_databricks"]
