"""Models: one forecaster per segment, trained, validated against champion and seasonal naive,
and deployed through registry aliases with an audit trail.

Pure model code (``panel``, ``features``, ``holt_winters``, ``forecaster``, ``baseline``,
``metrics``, ``backtest``, ``gate``) works on pandas and numpy; the tasks (``train``,
``validate``, ``deploy``) and commands (``rollback``, ``approve``) wire it to Spark, Delta and
MLflow through the run context.
"""
