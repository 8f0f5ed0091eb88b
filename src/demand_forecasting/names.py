"""Logical names of the tables and volumes this project owns, within the run's schema.

One place, so that step code, notebooks and tests agree. Full names come from
:meth:`demand_forecasting.platform.context.RunContext.table`.
"""

# Data pipeline (landing -> bronze -> quality gate -> silver -> gold)
LANDING_VOLUME = "landing"
CHECKPOINT_VOLUME = "checkpoints"
#: Data-quality results (one JSON per validated batch), readable by data scientists.
QUALITY_VOLUME = "data_quality"
BRONZE = "bronze_sales"
QUARANTINE = "quarantine_sales"
#: Rows that passed the quality gate, typed and canonical (silver is built from these).
VALIDATED = "validated_sales"
SILVER = "silver_sales"
FEATURES = "gold_features"
#: Planned covariates (price lists, promotion calendars) for future months, one row per
#: series, month and plan issued (:mod:`demand_forecasting.data.plans` reads the newest).
PLANS = "silver_plans"

# Models and governance
EVALUATIONS = "model_evaluations"
AUDIT = "model_audit"

# Scoring and monitoring
FORECASTS = "gold_forecasts"
DRIFT = "drift_psi"
ACCURACY = "forecast_accuracy"
TELEMETRY = "run_telemetry"
#: Estimated compute cost of each model per job run and task (monitor).
MODEL_COSTS = "model_costs"

# Orchestration
#: Values that grow with the estate, handed from task to task of a job run
#: (:mod:`demand_forecasting.platform.handover`).
HANDOVER = "job_handover"
