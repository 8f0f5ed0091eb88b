"""The data pipeline: landing -> bronze -> quality gate -> silver -> gold features.

- :mod:`~demand_forecasting.data.config`: dataset configs (what each landing column means).
- :mod:`~demand_forecasting.data.landing`: ``demand-forecasting land``, month by month.
- :mod:`~demand_forecasting.data.synthetic`: synthetic series for scale tests.
- :mod:`~demand_forecasting.data.ingest`: task ``ingest`` (landing files -> bronze).
- :mod:`~demand_forecasting.data.rules`, :mod:`~demand_forecasting.data.expectations`,
  :mod:`~demand_forecasting.data.validate`: task ``validate_data`` (the quality gate).
- :mod:`~demand_forecasting.data.silver`, :mod:`~demand_forecasting.data.features`,
  :mod:`~demand_forecasting.data.build_features`: task ``build_features``.
- :mod:`~demand_forecasting.data.streams`: incremental, exactly-once stream runs.
"""
