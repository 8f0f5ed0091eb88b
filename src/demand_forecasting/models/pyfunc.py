"""The MLflow form of a segment forecaster: a pyfunc wrapping the XGBoost booster.

Input: the segment's recent history, ``series_id`` (string), ``month`` (datetime, first of
month), ``y`` (double, NaN for a gap), the whole history of each series (a series with
fewer than 36 months is young and forecast by its segment's shape, see
:func:`~demand_forecasting.models.forecaster.young_series_log`; the rule is code, not model
state, so champions saved before it get it too). Output: one row per series observed in the
newest month and horizon 1..H: ``series_id, origin, horizon, month, forecast, forecast_lower,
forecast_upper, forecast_xgb, forecast_holt_winters, forecast_theta, plan_missing``. Scoring
loads ``models:/<name>@champion`` and calls ``predict(history)``.

A model trained with planned covariates (its recipe's ``covariates``: price, promotion) takes
them as more input columns (double): their actual values on the history rows, and on rows
with ``is_plan = true``, one per series and month after the history, their plans for the
months forecast. Its signature lists those columns; without the plan rows it refuses to
forecast (:class:`~demand_forecasting.models.covariates.MissingPlanError`). A model without
covariates (every model saved before them) takes and reads only ``series_id, month, y``.

The model folder holds XGBoost's own UBJ file and a JSON state. The wrapper class is pickled
by reference, so loading the model needs this project's wheel (the job clusters have it; for
Model Serving add the wheel to the requirements). Pickling the model code by value instead
would free it of the wheel but costs ~0.3 s per model logged.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import Model
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from demand_forecasting.models.forecaster import FORECAST_COLUMNS, STATE_FILE, load_forecaster
from demand_forecasting.models.panel import HISTORY_COLUMNS, PLAN_FLAG, Panel, panel_from_history

ARTIFACT_KEY = "forecaster"
#: Distributions the model needs at load time, pinned to what trained it.
REQUIRED_DISTRIBUTIONS = (
    ("mlflow", "mlflow"),
    ("xgboost", "xgboost-cpu"),
    ("pandas", "pandas"),
    ("numpy", "numpy"),
    ("cloudpickle", "cloudpickle"),
)


class SegmentForecastModel(PythonModel):
    """Loads the forecaster from its artifact folder and forecasts from a history frame."""

    def load_context(self, context: Any) -> None:
        """Read the forecaster (booster + state) from the model's artifacts."""
        self.forecaster = load_forecaster(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Forecast h = 1..H from the newest history month of ``model_input``."""
        covariates = self.forecaster.recipe.covariates
        if not covariates:
            history = model_input[list(HISTORY_COLUMNS)]
            return self.forecaster.predict(history)[list(FORECAST_COLUMNS)]
        return self.forecaster.predict(covariate_panel(model_input, covariates))[
            list(FORECAST_COLUMNS)
        ]


def covariate_panel(model_input: pd.DataFrame, covariates: Sequence[str]) -> Panel:
    """The panel of an input with planned covariates: history rows, then the plan rows
    (:data:`PLAN_FLAG`). An input lacking a covariate column gives a panel without
    covariates, which the forecaster refuses by name."""
    if not all(c in model_input.columns for c in covariates):
        return panel_from_history(model_input[list(HISTORY_COLUMNS)])
    flag = model_input.get(PLAN_FLAG)
    is_plan = (
        flag.fillna(False).astype(bool)
        if flag is not None
        else pd.Series(False, index=model_input.index)
    )
    history = model_input[~is_plan]
    plans = model_input.loc[is_plan, ["series_id", "month", *covariates]]
    return panel_from_history(history, covariates, plans)


def model_signature(covariates: Sequence[str] = ()) -> ModelSignature:
    """The signature a segment model is logged with (``covariates``: its planned ones)."""
    columns: list[ColSpec | TensorSpec] = [
        ColSpec("string", "series_id"),
        ColSpec("datetime", "month"),
        ColSpec("double", "y"),
    ]
    if covariates:
        columns += [ColSpec("double", c) for c in covariates]
        columns.append(ColSpec("boolean", PLAN_FLAG))
    inputs = Schema(columns)
    outputs = Schema(
        [
            ColSpec("string", "series_id"),
            ColSpec("datetime", "origin"),
            ColSpec("long", "horizon"),
            ColSpec("datetime", "month"),
            ColSpec("double", "forecast"),
            ColSpec("double", "forecast_lower"),
            ColSpec("double", "forecast_upper"),
            ColSpec("double", "forecast_xgb"),
            ColSpec("double", "forecast_holt_winters"),
            ColSpec("double", "forecast_theta"),
            ColSpec("boolean", "plan_missing"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


@functools.cache
def _pins() -> tuple[str, ...]:
    pins = []
    for module, preferred in REQUIRED_DISTRIBUTIONS:
        for dist in (preferred, module):
            try:
                pins.append(f"{dist}=={importlib.metadata.version(dist)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return tuple(pins)


def pip_requirements() -> list[str]:
    """Explicit, pinned requirements (no inference: it costs seconds per model; the installed
    versions are looked up once per process)."""
    return list(_pins())


class _PyfuncFlavor:
    """``mlflow.pyfunc`` as the flavor of ``Model.log``, without the serving-input replay.

    With an input example, ``mlflow.pyfunc.log_model`` saves the model, loads it back and
    predicts the example through the serving path: ~0.5 s per model, most of the logging
    time of a training. ``Model.log`` skips that when given ``validate_serving_input=False``,
    a switch ``pyfunc.log_model`` does not pass on; this shim takes it off before
    ``pyfunc.save_model`` (which refuses unknown arguments). The train task instead checks
    the first model of each training once (:func:`check_logged_model`).
    """

    __name__ = "mlflow.pyfunc"
    FLAVOR_NAME = mlflow.pyfunc.FLAVOR_NAME

    @staticmethod
    def save_model(**kwargs: Any) -> Any:
        kwargs.pop("validate_serving_input", None)
        return mlflow.pyfunc.save_model(**kwargs)


class _ExpectedNotices(logging.Filter):
    """Drops the two notices ``mlflow.pyfunc`` prints for every model logged here: that the
    model object is serialized with CloudPickle (chosen: :class:`SegmentForecastModel`
    pickles by reference to this package, which the model's requirements pin) and that the
    input example is validated. With 46 segments they were 92 lines of every training run."""

    NOTICES = (
        "Passing a Python object as `python_model`",
        "Validating input example against model signature",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOTICES)


_PYFUNC_LOGGER = logging.getLogger("mlflow.pyfunc")
if not any(isinstance(f, _ExpectedNotices) for f in _PYFUNC_LOGGER.filters):
    _PYFUNC_LOGGER.addFilter(_ExpectedNotices())


def log_forecaster(
    folder: Path,
    example: pd.DataFrame,
    name: str = "model",
    run: tuple[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> str:
    """Log the forecaster in ``folder`` as a pyfunc to a run; return its model URI.

    The model carries its signature and input example; the example is not replayed through
    the serving path here (see :class:`_PyfuncFlavor`).

    Args:
        folder: written by :meth:`SegmentForecaster.to_files`.
        example: input example (a few months of one series' history).
        name: the model's name within the run.
        run: ``(experiment id, run id)`` of the run (None: the active run). Passing it
            saves activating the run with ``mlflow.start_run`` (a few tracking-store round
            trips per model). The experiment is made the process's current one first:
            ``Model.log`` files the logged model under the *current* experiment, not the
            run's (with none set, under the store's default experiment, whose artifacts
            locally go to ``./mlruns`` of the working directory). It is set only when it is
            not the current one already (setting it reads the experiment from the store).
        params: the logged model's parameters. ``Model.log`` also copies the run's own
            parameters onto the model, so a caller may log them to the run afterwards, in
            one batch with its metrics, instead of before.
    """
    run_id = None
    if run is not None:
        experiment_id, run_id = run
        if _current_experiment_id() != experiment_id:
            mlflow.set_experiment(experiment_id=experiment_id)
    info = Model.log(
        artifact_path=None,
        name=name,
        flavor=_PyfuncFlavor,
        python_model=SegmentForecastModel(),
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=model_signature(_covariates_of(folder)),
        input_example=example,
        pip_requirements=pip_requirements(),
        flavor_name="pyfunc.CustomPythonModel",
        validate_serving_input=False,
        run_id=run_id,
        params=dict(params) if params else None,
    )
    return str(info.model_uri)


def _covariates_of(folder: Path) -> tuple[str, ...]:
    """The planned covariates of the forecaster saved in ``folder`` (its recipe's)."""
    state = json.loads((folder / STATE_FILE).read_text())
    return tuple(state["recipe"].get("covariates", ()))


def _current_experiment_id() -> str | None:
    """The experiment ``Model.log`` files a logged model under (None if MLflow's private
    lookup is gone: then the caller always sets it)."""
    lookup = getattr(mlflow.tracking.fluent, "_get_experiment_id", None)
    current = lookup() if lookup is not None else None
    return str(current) if current is not None else None


def check_logged_model(model_uri: str, example: pd.DataFrame) -> None:
    """Load a logged model through ``mlflow.pyfunc`` and forecast its input example.

    Raises:
        RuntimeError: the model does not load or returns no forecast (a packaging fault:
            every model of the training would share it).
    """
    try:
        forecast = mlflow.pyfunc.load_model(model_uri).predict(example)
    except Exception as exc:
        raise RuntimeError(
            f"model {model_uri} was logged but does not load and predict its input example "
            f"through mlflow.pyfunc ({type(exc).__name__}: {exc})"
        ) from exc
    if len(forecast) == 0 or list(forecast.columns) != list(FORECAST_COLUMNS):
        raise RuntimeError(
            f"model {model_uri} forecast {len(forecast)} row(s) with columns "
            f"{list(forecast.columns)} for its input example; expected rows with "
            f"{list(FORECAST_COLUMNS)}"
        )
