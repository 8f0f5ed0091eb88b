# Databricks notebook source
# MAGIC %md
# MAGIC # Review a monthly run
# MAGIC
# MAGIC For one target: the forecast of a series against its actuals, the drift table (which
# MAGIC segments breached the PSI threshold), the evaluation registry (candidate against
# MAGIC seasonal naive and the champion) and the model audit trail.
# MAGIC
# MAGIC **Compute:** a cluster with the project wheel installed, or serverless with the wheel
# MAGIC in the Environment panel. Nothing is installed here; every view is a function of
# MAGIC `demand_forecasting.reports`.

# COMMAND ----------

dbutils.widgets.text("target", "dev", "Bundle target")
dbutils.widgets.text("catalog", "dev", "Catalog")
dbutils.widgets.text("schema", "demand_forecasting", "Schema")
dbutils.widgets.text("series_id", "", "Series to plot (series_id)")

# COMMAND ----------

from demand_forecasting import names, reports
from demand_forecasting.platform.context import build_context

ctx = build_context(
    dbutils.widgets.get("target"), dbutils.widgets.get("catalog"), dbutils.widgets.get("schema")
)
series_id = dbutils.widgets.get("series_id")

# COMMAND ----------

# MAGIC %md ## Forecast against actuals

# COMMAND ----------

history = reports.series_history(ctx, series_id)
forecasts = reports.series_forecasts(ctx, series_id)
display(reports.series_figure(history, forecasts, title=series_id))

# COMMAND ----------

# MAGIC %md ## Drift: PSI per feature and segment, highest first

# COMMAND ----------

display(reports.latest_rows(ctx, names.DRIFT, order_by="psi", limit=100))

# COMMAND ----------

# MAGIC %md ## Evaluation registry and audit trail

# COMMAND ----------

display(reports.latest_rows(ctx, names.EVALUATIONS, order_by="evaluated_at", limit=100))

# COMMAND ----------

display(reports.latest_rows(ctx, names.AUDIT, order_by="promoted_at", limit=50))

# COMMAND ----------

# MAGIC %md ## Forecast accuracy once actuals arrived, and run telemetry

# COMMAND ----------

display(reports.latest_rows(ctx, names.ACCURACY, order_by="month", limit=100))

# COMMAND ----------

display(reports.table_overview(ctx, [names.TELEMETRY]))

# COMMAND ----------

# MAGIC %md ## Estimated cost per model (newest job runs; one row per model and task)

# COMMAND ----------

display(reports.latest_rows(ctx, names.MODEL_COSTS, order_by="run_month", limit=200))
