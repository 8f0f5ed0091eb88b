"""Monthly many-model demand forecasting, packaged as a Databricks Asset Bundle.

The same wheel runs on Databricks (Unity Catalog, Databricks MLflow) and on one machine
(local Spark + Delta, sqlite MLflow), driven there by :mod:`demand_forecasting.runner`.
"""

__version__ = "0.1.0"
