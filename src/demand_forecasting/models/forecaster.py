"""One segment's forecaster: statistical members per series (damped Holt-Winters and Theta
on the log) combined with a global XGBoost over the segment's series, every horizon 1..H.

The combination is on the log scale with the recipe's fixed weights: Holt-Winters and Theta
are averaged (``theta_weight``), then blended with XGBoost (``xgb_weight``). XGBoost is
direct multi-horizon and gets the statistical combination as a stacked feature.

``fit_forecaster(history, recipe)`` trains it; ``forecaster.predict(history)`` forecasts the
next H months from the newest month of whatever history it is given (so a champion trained
last month forecasts from this month's data without retraining). Only series observed in the
newest month are forecast: a series that stopped keeps teaching the model but gets no
forecast. A young series (observed in fewer than :data:`YOUNG_MONTHS` months, e.g. a product
launched after the model was trained) is forecast by its segment's shape instead
(:func:`young_series_log`); one written as zeros before its launch, fewer than
:data:`YOUNG_MONTHS` months ago (:meth:`.Panel.start_rows`), by its newest value
(:func:`launched_series_log`). :meth:`SegmentForecaster.to_files` / :func:`load_forecaster` are
the model's on-disk form (XGBoost's own UBJ format plus one JSON), wrapped by the MLflow
pyfunc.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from demand_forecasting.models import holt_winters, theta
from demand_forecasting.models.baseline import seasonal_naive, source_rows, values_at
from demand_forecasting.models.covariates import require_plans, stand_in_plans
from demand_forecasting.models.features import (
    FEATURE_NAMES,
    LEVEL_MONTHS,
    N_LAGS,
    covariate_feature_names,
    design_rows,
    feature_names,
)
from demand_forecasting.models.holt_winters import HoltWintersParams
from demand_forecasting.models.intervals import ForecastInterval, seasonal_naive_offsets
from demand_forecasting.models.panel import Panel, panel_from_history
from demand_forecasting.models.recipe import Recipe


class FeatureMismatchError(ValueError):
    """A model needs a feature that :mod:`demand_forecasting.models.features` no longer builds."""


#: Fewer training rows than this: no XGBoost half (Holt-Winters or seasonal naive alone).
MIN_TRAINING_ROWS = 100
#: A series observed in fewer months than this is young: Holt-Winters and Theta cannot fit it
#: (:data:`.holt_winters.MIN_MONTHS`) and its forecast is its segment's shape
#: (:func:`young_series_log`; benchmarks/README.md, "Young series"). One launched after
#: zeros fewer months ago than this is forecast by its newest value (:func:`launched_series_log`).
YOUNG_MONTHS = holt_winters.MIN_MONTHS
BOOSTER_FILE = "booster.ubj"
STATE_FILE = "forecaster.json"

#: Columns of a forecast frame.
FORECAST_COLUMNS = (
    "series_id",
    "origin",
    "horizon",
    "month",
    "forecast",
    "forecast_lower",
    "forecast_upper",
    "forecast_xgb",
    "forecast_holt_winters",
    "forecast_theta",
    # True where a planned covariate's plan was missing and a stand-in was used
    # (:mod:`.covariates`); False for a model without planned covariates.
    "plan_missing",
)


@dataclass
class SegmentForecaster:
    """A fitted segment model.

    Attributes:
        recipe: how it was fitted.
        booster: the XGBoost half (None when the segment had too little history).
        holt_winters_params: per series id, the fitted smoothing parameters.
        trained_until: the newest month of the training history.
        training_rows: rows the XGBoost half was fitted on.
        theta_alphas: per series id, Theta's fitted smoothing weight (empty for a model
            saved before Theta existed: the weights are then fitted when forecasting).
        interval: the forecast interval from the training backtest (None: no interval, as
            for a model saved before intervals existed; see :mod:`.intervals`).
    """

    recipe: Recipe
    booster: xgb.Booster | None
    holt_winters_params: dict[str, HoltWintersParams]
    trained_until: pd.Timestamp
    training_rows: int = 0
    feature_names: tuple[str, ...] = field(default=FEATURE_NAMES)
    theta_alphas: dict[str, float] = field(default_factory=dict)
    interval: ForecastInterval | None = None

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature, normalised to sum 1 (empty without a booster)."""
        if self.booster is None:
            return {}
        raw = self.booster.get_score(importance_type="total_gain")
        gain = {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}
        total = sum(gain.values()) or 1.0
        return {name: gain.get(name, 0.0) / total for name in self.feature_names}

    def predict(self, history: pd.DataFrame | Panel) -> pd.DataFrame:
        """Forecast h = 1..H from the newest month of ``history``.

        Args:
            history: long frame ``series_id, month, y`` (or a :class:`Panel`); a model with
                planned covariates needs a Panel carrying them and their plans
                (:func:`.panel_from_history` with ``plans``).

        Returns:
            One row per forecast series and horizon, columns :data:`FORECAST_COLUMNS`
            (``forecast`` is the combination, on the target's scale, never negative;
            ``forecast_lower`` / ``forecast_upper`` its interval, NaN without one; the other
            forecast columns are its members alone; ``plan_missing`` marks the rows whose
            plan was stood in).

        Raises:
            MissingPlanError: the model has planned covariates and the input has no plans
                for the months forecast (:func:`.covariates.require_plans`).
        """
        panel = history if isinstance(history, Panel) else panel_from_history(history)
        horizon = self.recipe.horizon
        if self.recipe.is_seasonal_naive:
            return seasonal_naive_forecast(panel, horizon)
        covariates = self.recipe.covariates
        missing_plans = np.zeros((horizon, len(panel.series)), dtype=bool)
        if covariates:
            require_plans(panel, covariates, horizon)
            panel, missing_plans = stand_in_plans(panel, covariates, horizon)
        known = [self.holt_winters_params.get(s) for s in panel.series]
        hw_paths, _ = holt_winters.panel_paths(panel.log_values, horizon, known)
        alphas = [self.theta_alphas.get(s) for s in panel.series]
        theta_paths, _ = theta.panel_paths(panel.log_values, horizon, alphas)
        paths = combine_logs(theta_paths, hw_paths, self.recipe.theta_weight)
        newest = len(panel.months) - 1
        rows = design_rows(panel, np.array([newest]), horizon, paths, covariates)
        if len(rows.level) == 0:
            return pd.DataFrame(columns=list(FORECAST_COLUMNS))
        hw_log = hw_paths[newest, rows.series, rows.horizon - 1]
        theta_log = theta_paths[newest, rows.series, rows.horizon - 1]
        statistical_log = paths[newest, rows.series, rows.horizon - 1]
        if self.booster is not None:
            matrix = xgb.DMatrix(
                self.booster_input(
                    rows.features, (*FEATURE_NAMES, *covariate_feature_names(covariates))
                ),
                feature_names=list(self.feature_names),
            )
            xgb_log = self.booster.predict(matrix) + rows.level
        else:
            xgb_log = np.full(len(rows.level), np.nan)
        blend = combine_logs(xgb_log, statistical_log, self.recipe.xgb_weight)
        # A young series (too short for the statistical members): the segment's shape.
        blend = young_series_log(panel, rows.series, rows.horizon, blend)
        # Launched after zeros: its newest value (the ramp-up of a launch).
        blend = launched_series_log(panel, rows.series, blend)
        # Neither half could forecast (short series): fall back to the seasonal naive value.
        naive_log = seasonal_naive_log(panel, rows.series, rows.horizon)
        blend = np.where(np.isnan(blend), naive_log, blend)
        if self.interval is not None:
            lower, upper = self.interval.bounds(blend, rows.horizon)
        else:
            lower = upper = np.full(len(blend), np.nan)
        return pd.DataFrame(
            {
                "series_id": np.asarray(panel.series)[rows.series],
                "origin": panel.end,
                "horizon": rows.horizon.astype(int),
                "month": [panel.end + pd.DateOffset(months=int(h)) for h in rows.horizon],
                "forecast": _to_scale(blend),
                "forecast_lower": lower,
                "forecast_upper": upper,
                "forecast_xgb": _to_scale(xgb_log),
                "forecast_holt_winters": _to_scale(hw_log),
                "forecast_theta": _to_scale(theta_log),
                "plan_missing": missing_plans[rows.horizon - 1, rows.series],
            }
        ).sort_values(["series_id", "horizon"], ignore_index=True)

    def booster_input(
        self, features: np.ndarray, built: tuple[str, ...] = FEATURE_NAMES
    ) -> np.ndarray:
        """The columns of ``features`` (built for the names ``built``) this model's booster
        was trained on, in its order.

        A model keeps the features it was trained with: a feature added to the code later is
        left out of its input, so champions trained before it still forecast.

        Raises:
            FeatureMismatchError: the booster needs a feature the code no longer builds.
        """
        if self.feature_names == built:
            return features
        gone = [name for name in self.feature_names if name not in built]
        if gone:
            raise FeatureMismatchError(
                f"the model was trained with features {gone} that "
                "demand_forecasting.models.features no longer builds (FEATURE_NAMES): keep "
                "building them, or retrain every segment with this feature code "
                "(`demand-forecasting run full_retrain`) before scoring"
            )
        return features[:, [built.index(name) for name in self.feature_names]]

    def to_files(self, folder: Path) -> list[Path]:
        """Write the booster (XGBoost UBJ) and the rest (JSON) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if self.booster is not None:
            booster_path = folder / BOOSTER_FILE
            self.booster.save_model(str(booster_path))
            written.append(booster_path)
        state_path = folder / STATE_FILE
        state_path.write_text(json.dumps(self.state(), sort_keys=True))
        written.append(state_path)
        return written

    def state(self) -> dict[str, object]:
        """Everything but the booster, as JSON-ready values."""
        return {
            "recipe": json.loads(self.recipe.to_json()),
            "holt_winters_params": {
                s: p.as_list() for s, p in sorted(self.holt_winters_params.items())
            },
            "trained_until": self.trained_until.strftime("%Y-%m-%d"),
            "training_rows": self.training_rows,
            "feature_names": list(self.feature_names),
            "theta_alphas": dict(sorted(self.theta_alphas.items())),
            "interval": self.interval.to_json() if self.interval is not None else None,
        }


def combine_logs(first: np.ndarray, second: np.ndarray, first_weight: float) -> np.ndarray:
    """Weighted mean of two members on the log scale; where one is missing, the other.

    A member with weight 0 is left out altogether (its NaN never spreads).
    """
    if first_weight <= 0.0:
        return np.where(np.isnan(second), first, second)
    if first_weight >= 1.0:
        return np.where(np.isnan(first), second, first)
    blended = first_weight * first + (1.0 - first_weight) * second
    blended = np.where(np.isnan(second), first, blended)
    return np.where(np.isnan(first), second, blended)


def young_series_log(
    panel: Panel, series: np.ndarray, horizon: np.ndarray, forecast_log: np.ndarray
) -> np.ndarray:
    """``forecast_log`` with each young series' rows replaced by its segment's shape.

    A series observed in fewer than :data:`YOUNG_MONTHS` months (a product launched after
    the model was trained, or recently) has no statistical members, and the XGBoost half
    extrapolates from mostly missing lags: on aus_retail it forecast such series with a
    WAPE of 28-76 % (benchmarks/README.md, "Young series"). Instead the young series moves
    as the model forecasts the segment's mature series to move from the months it was seen
    in: its forecast for month o+h is its mean log over its newest min(age, 12) months plus
    the mean, over the mature series forecast here, of (their forecast for o+h minus their
    mean log over those same months). Season and growth come from the segment, the level
    from the series. A series launched after zeros fewer than :data:`YOUNG_MONTHS` months
    ago (:func:`launched_series`) is no mature peer: its months of zeros make it old, but
    the model's forecast of it extrapolates its launch.

    Rows of mature series are returned unchanged (the same array values); so is everything
    when no young series is forecast or no mature series can lend its shape.

    Args:
        panel: the history the forecast starts from.
        series: per row, the column index of its series in ``panel``.
        horizon: per row, months ahead (1..H).
        forecast_log: per row, the model's forecast on the log scale.
    """
    observed = ~np.isnan(panel.values)
    young = observed.sum(axis=0) < YOUNG_MONTHS
    forecast_series = np.unique(series)
    if not young[forecast_series].any():
        return forecast_log
    n_horizons = int(horizon.max())
    grid = np.full((len(panel.series), n_horizons), np.nan)
    grid[series, horizon - 1] = forecast_log
    # A recent launch is old by its observed months (its zeros), but its members read the
    # launch as a trend: no shape to lend.
    launched = launched_series(panel)
    mature = [
        s
        for s in forecast_series
        if not young[s] and not launched[s] and np.isfinite(grid[s]).all()
    ]
    if not mature:
        return forecast_log
    z = panel.log_values
    newest = len(panel.months) - 1
    out = forecast_log.copy()
    for s in forecast_series[young[forecast_series]]:
        first = int(np.argmax(observed[:, s]))
        window = np.arange(max(first, newest + 1 - LEVEL_MONTHS), newest + 1)
        seen = window[observed[window, s]]
        peers = np.asarray(mature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a peer with a gap there: NaN
            peer_level = np.nanmean(z[np.ix_(seen, peers)], axis=0)
        lending = np.isfinite(peer_level)
        if not lending.any():
            continue
        shape = np.mean(grid[peers[lending]] - peer_level[lending, None], axis=0)
        own = series == s
        out[own] = z[seen, s].mean() + shape[horizon[own] - 1]
    return out


def launched_series_log(panel: Panel, series: np.ndarray, forecast_log: np.ndarray) -> np.ndarray:
    """``forecast_log`` with the rows of each series launched after zeros, fewer than
    :data:`YOUNG_MONTHS` months ago, replaced by its newest value.

    Such a series (written as zeros before its launch, :meth:`.Panel.start_rows`) is old
    by its observed months, so :func:`young_series_log` does not take it, and its members
    fit its zeros and its launch: Holt-Winters and Theta read the launch as a trend, the
    XGBoost half sees zero lags. On PBS's launches (origins up to 2004, k = 1..30 months
    after the launch) that forecast had a WAPE of 35 %, the segment shape 49 % (PBS's
    segments mix series of opposite seasons), the newest value 25 % (a launch ramps up):
    benchmarks/README.md, "Series launched after zeros".

    Rows of every other series are returned unchanged (the same array values).
    """
    rows = launched_series(panel)[series]
    if not rows.any():
        return forecast_log
    out = forecast_log.copy()
    out[rows] = panel.log_values[-1, series[rows]]
    return out


def launched_series(panel: Panel) -> np.ndarray:
    """Per series of ``panel``, True when it started after its first observed month (after
    zeros or stray values, :meth:`.Panel.start_rows`) and has been observed in fewer than
    :data:`YOUNG_MONTHS` months since: the series :func:`launched_series_log` forecasts."""
    observed = ~np.isnan(panel.values)
    start = panel.start_rows()
    after_zeros = start > np.argmax(observed, axis=0)
    since_start = np.arange(len(panel.months))[:, None] >= start[None, :]
    return after_zeros & ((observed & since_start).sum(axis=0) < YOUNG_MONTHS)


def seasonal_naive_log(panel: Panel, series: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """The seasonal-naive value for each (series, horizon) row, on the log scale: the
    newest same-calendar-month value, or the newest value before the series started
    (:func:`.baseline.source_rows`)."""
    grid = values_at(panel.log_values, source_rows(panel, np.arange(1, int(horizon.max()) + 1)))
    return grid[horizon - 1, series]


def seasonal_naive_forecast(panel: Panel, horizon: int) -> pd.DataFrame:
    """The forecast of the seasonal-naive recipe: each month's value a year before.

    Where that month is a gap, or before the series started, the series' newest value
    stands in (every forecast series was observed in the newest month). The member columns
    are NaN: nothing else was fitted. The interval rests on the year-on-year changes since
    the series started (a launch from zero is no change a forecast can make): none where
    there are too few of them.
    """
    forecast = seasonal_naive(panel, horizon)
    newest = pd.Series(panel.values[len(panel.months) - 1], index=list(panel.series))
    forecast["forecast"] = forecast["forecast"].fillna(forecast["series_id"].map(newest))
    # Its interval: each series' own year-on-year log changes (see .intervals).
    position = forecast["series_id"].map({s: i for i, s in enumerate(panel.series)}).to_numpy()
    years = np.ceil(forecast["horizon"].to_numpy(int) / 12).astype(int)
    started_log = np.where(panel.not_started(), np.nan, panel.log_values)
    lower = np.full(len(forecast), np.nan)
    upper = np.full(len(forecast), np.nan)
    for k in np.unique(years):
        low, high = seasonal_naive_offsets(started_log, int(k))
        rows = years == k
        lower[rows], upper[rows] = low[position[rows]], high[position[rows]]
    value = forecast["forecast"].to_numpy(float)
    forecast_log = np.log1p(value)
    # The offsets hold 0, but expm1(log1p(v)) is not always v: a bound a rounding error
    # past its forecast (1061597.0000000009 over 1061597.0) fails lower <= forecast <= upper.
    forecast["forecast_lower"] = np.minimum(_to_scale(forecast_log + lower), value)
    forecast["forecast_upper"] = np.maximum(_to_scale(forecast_log + upper), value)
    for member in ("forecast_xgb", "forecast_holt_winters", "forecast_theta"):
        forecast[member] = np.nan
    forecast["plan_missing"] = False  # reads no covariate
    return forecast[list(FORECAST_COLUMNS)]


def _to_scale(log_values: np.ndarray) -> np.ndarray:
    return np.clip(np.expm1(log_values), 0.0, None)


def fit_forecaster(history: pd.DataFrame | Panel, recipe: Recipe) -> SegmentForecaster:
    """Fit a segment's forecaster on all of ``history``.

    Args:
        history: long frame ``series_id, month, y`` (and the recipe's covariates) of the
            segment's series, or a Panel.
        recipe: how to fit.

    Returns:
        The fitted forecaster; its XGBoost half is None when the history yields fewer than
        :data:`MIN_TRAINING_ROWS` training rows. The seasonal-naive recipe fits nothing.
    """
    panel = (
        history
        if isinstance(history, Panel)
        else panel_from_history(history, () if recipe.is_seasonal_naive else recipe.covariates)
    )
    if recipe.is_seasonal_naive:
        return SegmentForecaster(recipe, None, {}, trained_until=panel.end)
    horizon = recipe.horizon
    hw_paths, params = holt_winters.panel_paths(panel.log_values, horizon)
    theta_paths, alphas = theta.panel_paths(panel.log_values, horizon)
    paths = combine_logs(theta_paths, hw_paths, recipe.theta_weight)
    newest = len(panel.months) - 1
    first_origin = max(N_LAGS - 1, newest - recipe.train_window_months)
    covariates = recipe.covariates
    if covariates:
        require_plans(panel, covariates, 0)  # their history, at least
    names = feature_names(covariates)
    rows = design_rows(panel, np.arange(first_origin, newest), horizon, paths, covariates)
    rows = rows.select(~np.isnan(rows.target))
    booster = None
    if len(rows.target) >= MIN_TRAINING_ROWS:
        weights = None
        if recipe.recency_halflife_months > 0:
            age = newest - (rows.origin + rows.horizon)
            weights = 0.5 ** (age / recipe.recency_halflife_months)
        model = xgb.XGBRegressor(**recipe.xgb_params)
        frame = pd.DataFrame(rows.features, columns=list(names))
        model.fit(frame, rows.target, sample_weight=weights)
        booster = model.get_booster()
    return SegmentForecaster(
        recipe=recipe,
        booster=booster,
        holt_winters_params={
            s: p for s, p in zip(panel.series, params, strict=True) if p is not None
        },
        trained_until=panel.end,
        training_rows=len(rows.target),
        feature_names=names,
        theta_alphas={s: a for s, a in zip(panel.series, alphas, strict=True) if a is not None},
    )


def load_forecaster(folder: Path) -> SegmentForecaster:
    """Read a forecaster written by :meth:`SegmentForecaster.to_files`.

    Raises:
        FileNotFoundError: ``folder`` has no forecaster state file.
    """
    state_path = folder / STATE_FILE
    if not state_path.is_file():
        raise FileNotFoundError(
            f"{state_path} does not exist: not a segment forecaster folder (it needs "
            f"{STATE_FILE}, and {BOOSTER_FILE} when the model has an XGBoost half)"
        )
    state = json.loads(state_path.read_text())
    booster = None
    if (folder / BOOSTER_FILE).is_file():
        booster = xgb.Booster()
        booster.load_model(str(folder / BOOSTER_FILE))
    return SegmentForecaster(
        recipe=Recipe.from_json(json.dumps(state["recipe"])),
        booster=booster,
        holt_winters_params={
            s: HoltWintersParams(*p) for s, p in state["holt_winters_params"].items()
        },
        trained_until=pd.Timestamp(state["trained_until"]),
        training_rows=int(state["training_rows"]),
        feature_names=tuple(state["feature_names"]),
        theta_alphas={s: float(a) for s, a in state.get("theta_alphas", {}).items()},
        interval=ForecastInterval.from_json(state.get("interval")),
    )
