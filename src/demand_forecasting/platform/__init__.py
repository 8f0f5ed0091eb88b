"""Where the code runs: Spark, tables, MLflow and paths, built once per process.

Step code receives a :class:`~demand_forecasting.platform.context.RunContext` (from
:func:`~demand_forecasting.platform.context.build_context`) and never asks whether it runs
on Databricks or on a laptop. This package's ``__init__`` imports nothing heavy, so that
light modules (paths, task values) load without pyspark or mlflow.
"""
