# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the data of one target
# MAGIC
# MAGIC What the monthly job has loaded so far: every table of the run with its version and row
# MAGIC count, then the newest bronze, quarantine and silver rows.
# MAGIC
# MAGIC **Compute:** a cluster with the project wheel installed (the bundle uploads it to
# MAGIC `<root_path>/artifacts/.internal/`), or serverless with that wheel added in the
# MAGIC Environment panel. This notebook installs nothing and holds no logic: everything it
# MAGIC shows comes from `demand_forecasting.reports`.
# MAGIC
# MAGIC Locally, call the same functions with `build_context("dev", "dev", "demand_forecasting")`
# MAGIC from `demand_forecasting.platform.context` (the local Delta tables under `.local/`).

# COMMAND ----------

dbutils.widgets.text("target", "dev", "Bundle target")
dbutils.widgets.text("catalog", "dev", "Catalog")
# In dev the schema carries your prefix: dev_<you>_demand_forecasting.
dbutils.widgets.text("schema", "demand_forecasting", "Schema")

# COMMAND ----------

from demand_forecasting import names, reports
from demand_forecasting.platform.context import build_context

ctx = build_context(
    dbutils.widgets.get("target"), dbutils.widgets.get("catalog"), dbutils.widgets.get("schema")
)

# COMMAND ----------

# MAGIC %md ## Tables of the run

# COMMAND ----------

display(reports.table_overview(ctx))

# COMMAND ----------

# MAGIC %md ## Newest rows: bronze (as landed), quarantine (with the failed rule), silver

# COMMAND ----------

display(reports.latest_rows(ctx, names.BRONZE, order_by="load_time"))

# COMMAND ----------

display(reports.latest_rows(ctx, names.QUARANTINE, order_by="validated_at"))

# COMMAND ----------

display(reports.latest_rows(ctx, names.SILVER, order_by="month"))
