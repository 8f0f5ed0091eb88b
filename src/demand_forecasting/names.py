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
#: Plans of the dataset's planned covariates (price, promotion) for future months, one row per
#: series, month planned and plan file (:mod:`demand_forecasting.data.plans`).
PLANS = "silver_plans"
#: Plan rows that broke a plan rule, as they landed, with the rule.
PLANS_QUARANTINE = "quarantine_plans"
#: One row per plan file version loaded: its counts (which files are done).
PLAN_FILES = "plan_files"

# Models and governance
EVALUATIONS = "model_evaluations"
AUDIT = "model_audit"
#: The versions each month's run report listed as awaiting approval (``reported:YYYY-MM``).
APPROVAL_REQUESTS = "approval_requests"

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
