"""Cross-series learning: a global model of the statistical combination's log residuals.

An experiment for issue 4 (session 5, branch ``acc5``), not a product change. The production
forecaster is per segment; here one XGBoost model learns across all 152 aus_retail series
what the statistical combination (damped Holt-Winters + Theta on log1p, equal weights, the
recipe's ``theta_weight``) gets wrong: its target is ``log1p(y[o+h]) - statistical[o, h]``
for every series, training origin ``o`` and horizon ``h = 1..12`` (in the adopted setting
minus that residual's mean over all series at the same origin and horizon: the model learns
which series the combination gets more or less wrong than the others, not the month's common
error, which did not carry from one period to the next), with horizon, calendar month, the
combination's implied growth, recent growth rates, the combination's own recent errors,
scale-free series statistics and state / industry codes as features; rows weighted by
``y / scale`` (the weight MASE gives a log error). The forecast is
``statistical + w * residual`` on log1p (``w`` = SETTING's ``blend``).

Honesty rules (the same as the earlier accuracy sessions):

- the statistical members at every origin (training and evaluation) are fitted on the months
  <= that origin only, with the production functions (``holt_winters.panel_paths`` and
  ``theta.panel_paths`` on the history cut at the origin, exactly what ``fit_forecaster``
  does per series);
- a global model used at evaluation origin ``o`` is trained on rows whose target month is
  <= its training cut ``c <= o``: it is retrained every December (``c`` = that December)
  and serves the origins up to the next November (staler than a monthly retrain);
- features, model settings and the blend weight were chosen on the development window
  (origins 2013-12 .. 2014-12) and the early window (2008-12 .. 2012-12); the protocol
  window (2016-12 .. 2017-12) was run once with the fixed setting (``--window protocol``).

Baselines on the same (series, origin) pairs come from ``model_accuracy.forecast_segment``
(the production ``fit_forecaster`` + ``predict`` per segment: the shipped champion, its
members, seasonal naive, the in-sample MASE scale) and are scored with
``model_accuracy``'s per-pair MASE (``metrics.accuracy``).

Usage (run each step under ``nice -n 19``; caches go to ``--cache``, default /tmp/acc5):

    .venv/bin/python benchmarks/cross_learning.py members      # statistical members, all origins
    .venv/bin/python benchmarks/cross_learning.py production --window dev   # champion fits
    .venv/bin/python benchmarks/cross_learning.py production --window early
    .venv/bin/python benchmarks/cross_learning.py production --window protocol
    .venv/bin/python benchmarks/cross_learning.py variants   # the choices (dev, early only)
    .venv/bin/python benchmarks/cross_learning.py report [--windows dev,early,protocol]

``report`` trains the global models (xgboost, one thread), scores every method per window,
times one training of the global model on the full history (CPU seconds, what the monthly
job would pay) and writes benchmarks/results/cross_learning.json (figures + machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from demand_forecasting.models import holt_winters, theta
from demand_forecasting.models.backtest import NAIVE
from demand_forecasting.models.metrics import seasonal_scale
from demand_forecasting.models.recipe import Recipe
from machine_info import machine
from model_accuracy import CHAMPION, forecast_segment, load_aus_retail, score

HERE = Path(__file__).resolve().parent
HORIZON = 12
#: Evaluation windows: (first origin, last origin).
WINDOWS = {
    "early": ("2008-12", "2012-12"),
    "dev": ("2013-12", "2014-12"),
    "protocol": ("2016-12", "2017-12"),
}
#: First training origin of the global model (every month from here on is an origin).
FIRST_ORIGIN = "1995-12"
LAST_ORIGIN = "2017-12"
STATISTICAL = "Holt-Winters + Theta (statistical combination)"


def months(first: str, last: str) -> pd.DatetimeIndex:
    """Consecutive first-of-month timestamps from ``first`` to ``last`` (``YYYY-MM``)."""
    return pd.date_range(f"{first}-01", f"{last}-01", freq="MS")


# ----------------------------------------------------------------------------- members


def member_paths(panel: pd.DataFrame, origins: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Holt-Winters and Theta log forecasts at each origin, ``O x S x H`` (NaN where none).

    ``panel``: months x series of y. At origin ``o`` each member is fitted on the months
    <= ``o`` (as ``fit_forecaster`` + ``predict`` do); a series not observed at ``o`` gets
    NaN (production forecasts only series observed in the newest month).
    """
    log_values = np.log1p(np.clip(panel.to_numpy(), 0.0, None))
    n_series = log_values.shape[1]
    hw = np.full((len(origins), n_series, HORIZON), np.nan)
    th = np.full_like(hw, np.nan)
    for i, origin in enumerate(origins):
        t = int(panel.index.get_loc(origin))
        cut = log_values[: t + 1]
        observed = ~np.isnan(cut[-1])
        hw_paths, _ = holt_winters.panel_paths(cut[:, observed], HORIZON)
        th_paths, _ = theta.panel_paths(cut[:, observed], HORIZON)
        hw[i, observed] = hw_paths[-1]
        th[i, observed] = th_paths[-1]
    return {"hw": hw, "theta": th}


def run_members(cache: Path) -> None:
    """Cache the members at every month from FIRST_ORIGIN to LAST_ORIGIN."""
    data = load_aus_retail()
    panel = data.pivot(index="month", columns="series_id", values="y").asfreq("MS")
    origins = months(FIRST_ORIGIN, LAST_ORIGIN)
    started = time.process_time()
    paths = member_paths(panel, origins)
    np.savez_compressed(
        cache / "members.npz",
        origins=origins.strftime("%Y-%m").to_numpy(),
        series=panel.columns.to_numpy(),
        **paths,
    )
    cpu = time.process_time() - started
    (cache / "members.json").write_text(
        json.dumps({"cpu_s": round(cpu, 1), "origins": len(origins), "series": panel.shape[1]})
    )
    print(f"members: {len(origins)} origins x {panel.shape[1]} series in {cpu:.0f} s CPU")


# ---------------------------------------------------------------------- global model

FEATURES = (
    "horizon",
    "target_month",
    "stat_vs_level",  # statistical forecast minus the 12-month mean log
    "stat_yoy",  # statistical forecast minus the same month a year before (implied growth)
    "hw_minus_theta",  # disagreement of the two members
    "yoy_1",  # growth of the newest month on a year before
    "yoy_3",  # growth of the newest 3 months on a year before
    "yoy_12",  # growth of the newest 12 months on the 12 before
    "yoy_prev",  # growth of the 12 months before on the 12 before those
    "yoy_vol",  # std of the monthly year-on-year growth over the last 24 months
    "bias_12",  # mean error of the statistical forecasts made 12 months ago (h = 1..12)
    "bias_1",  # mean one-step error of the statistical forecasts over the last 6 months
    "bias_h",  # error of the statistical forecast made h months ago for the origin month
    "rel_scale",  # log of the MASE scale relative to the level (smoothness)
    "log_level",  # size
    "state",
    "industry",
    "xs_yoy_3",  # mean of yoy_3 over all series at the origin (common growth)
    "xs_bias_12",  # mean of bias_12 over all series at the origin
    "xs_stat_yoy",  # mean of stat_yoy over all series at the origin and horizon
)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _nanstd(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(values, axis=axis)


class Design:
    """Feature rows for every cached origin, series and horizon (built once, sliced later).

    Arrays are ``O x S x H`` (features: ``O x S x H x F``) over the cached origins.
    """

    def __init__(self, cache: Path, theta_weight: float) -> None:
        data = load_aus_retail()
        panel = data.pivot(index="month", columns="series_id", values="y").asfreq("MS")
        stored = np.load(cache / "members.npz", allow_pickle=True)
        self.origins = pd.DatetimeIndex(pd.to_datetime([f"{o}-01" for o in stored["origins"]]))
        self.series = list(stored["series"])
        assert self.series == list(panel.columns)
        hw, th = stored["hw"], stored["theta"]
        stat = theta_weight * th + (1 - theta_weight) * hw
        stat = np.where(np.isnan(hw), th, np.where(np.isnan(th), hw, stat))
        self.stat = stat
        values = panel.to_numpy()
        z = np.log1p(np.clip(values, 0.0, None))
        rows = np.array([panel.index.get_loc(o) for o in self.origins])
        self.rows = rows
        n_o, n_s, n_h = stat.shape
        horizons = np.arange(1, n_h + 1)

        def lagged(k: int) -> np.ndarray:  # z at origin row - k, O x S
            return z[rows - k]

        level = _nanmean(np.stack([lagged(k) for k in range(12)]), axis=0)
        previous = _nanmean(np.stack([lagged(k) for k in range(12, 24)]), axis=0)
        before = _nanmean(np.stack([lagged(k) for k in range(24, 36)]), axis=0)
        yoy_1 = lagged(0) - lagged(12)
        yoy_3 = _nanmean(np.stack([lagged(k) - lagged(k + 12) for k in range(3)]), axis=0)
        yoy_vol = _nanstd(np.stack([lagged(k) - lagged(k + 12) for k in range(24)]), axis=0)
        # MASE scale at each origin: the in-sample mean |y_t - y_{t-12}| up to it.
        scale = np.stack([seasonal_scale(values[: r + 1]) for r in rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_scale = np.log(scale / np.expm1(level))
        # Errors of earlier statistical forecasts, known at the origin (cache index i - k).
        actual = np.full((n_o, n_s, n_h), np.nan)  # z at origin + h (NaN past the data)
        for j, h in enumerate(horizons):
            inside = rows + h < len(z)
            actual[inside, :, j] = z[rows[inside] + h]
        error = actual - stat  # error[i, :, h-1] is known at origin i + h
        bias_12 = np.full((n_o, n_s), np.nan)
        bias_1 = np.full((n_o, n_s), np.nan)
        bias_h = np.full((n_o, n_s, n_h), np.nan)
        for i in range(n_o):
            if i >= 12:
                bias_12[i] = _nanmean(error[i - 12], axis=1)
            if i >= 6:
                bias_1[i] = _nanmean(error[i - 6 : i, :, 0], axis=0)
            for j, h in enumerate(horizons):
                if i >= h:
                    bias_h[i, :, j] = error[i - h, :, j]
        raw = (
            pd.read_csv(
                resources.files("tsdata").joinpath("fpppy/aus_retail.csv"), usecols=[0, 1, 2]
            )
            .drop_duplicates("Series ID")
            .set_index("Series ID")
        )
        state = raw.loc[self.series, "State"].astype("category").cat.codes.to_numpy()
        industry = raw.loc[self.series, "Industry"].astype("category").cat.codes.to_numpy()
        month = self.origins.month.to_numpy()
        shape = (n_o, n_s, n_h)

        def per_h(a: np.ndarray) -> np.ndarray:  # O x S -> O x S x H
            return np.broadcast_to(a[..., None], shape)

        stat_yoy = np.full(shape, np.nan)
        for j, h in enumerate(horizons):
            stat_yoy[:, :, j] = stat[:, :, j] - lagged(12 - h)
        columns = {
            "horizon": np.broadcast_to(horizons.astype(float), shape),
            "target_month": np.broadcast_to(
                ((month[:, None] - 1 + horizons[None, :]) % 12 + 1)[:, None, :].astype(float),
                shape,
            ),
            "stat_vs_level": stat - level[..., None],
            "stat_yoy": stat_yoy,
            "hw_minus_theta": hw - th,
            "yoy_1": per_h(yoy_1),
            "yoy_3": per_h(yoy_3),
            "yoy_12": per_h(level - previous),
            "yoy_prev": per_h(previous - before),
            "yoy_vol": per_h(yoy_vol),
            "bias_12": per_h(bias_12),
            "bias_1": per_h(bias_1),
            "bias_h": bias_h,
            "rel_scale": per_h(rel_scale),
            "log_level": per_h(level),
            "state": np.broadcast_to(state[None, :, None].astype(float), shape),
            "industry": np.broadcast_to(industry[None, :, None].astype(float), shape),
            "xs_yoy_3": per_h(np.broadcast_to(_nanmean(yoy_3, axis=1)[:, None], (n_o, n_s))),
            "xs_bias_12": per_h(np.broadcast_to(_nanmean(bias_12, axis=1)[:, None], (n_o, n_s))),
            "xs_stat_yoy": np.broadcast_to(_nanmean(stat_yoy, axis=1)[:, None, :], shape),
        }
        self.features = np.stack([columns[name] for name in FEATURES], axis=-1)
        self.target = error
        # MASE weight of a log error: y / scale (level on y over the in-sample scale).
        with np.errstate(divide="ignore", invalid="ignore"):
            self.weight = per_h(np.expm1(level) / scale)
        self.target_row = rows[:, None] + horizons[None, :]  # O x H panel row of the target
        self.scale = scale
        self.values = values
        self.months = panel.index

    def training(self, cut: pd.Timestamp, names: tuple[str, ...], centred: bool = False):
        """Rows whose target month is <= ``cut`` (and is observed), the chosen features.

        ``centred``: the target minus its mean over all series at the same origin and
        horizon (the model then learns only which series the combination gets more or less
        wrong than the others, not the common error of the month).
        """
        cut_row = int(self.months.get_loc(cut))
        known = np.broadcast_to((self.target_row <= cut_row)[:, None, :], self.target.shape)
        keep = known & ~np.isnan(self.target) & ~np.isnan(self.stat)
        columns = [FEATURES.index(n) for n in names]
        target = self.target
        if centred:
            target = target - _nanmean(target, axis=1)[:, None, :]
        return (
            self.features[keep][:, columns],
            target[keep],
            self.weight[keep],
        )

    def rows_at(self, origin: pd.Timestamp, names: tuple[str, ...]) -> np.ndarray:
        """``S x H x F`` features at one origin."""
        columns = [FEATURES.index(n) for n in names]
        return self.features[self.origins.get_loc(origin)][..., columns]


#: The global model's settings (chosen on the development and early windows).
SETTING = {
    "features": tuple(f for f in FEATURES if not f.startswith("xs_")),
    "weighting": "mase",  # training rows weighted by y / scale (MASE's weight of a log error)
    "centred": True,  # target minus the mean over series at the same origin and horizon
    "weight_clip_quantile": 0.99,
    "params": {
        "objective": "reg:squarederror",
        "max_depth": 4,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 50.0,
        "tree_method": "hist",
        "nthread": 1,
        "seed": 0,
    },
    "rounds": 300,
    "blend": 0.75,
}


def train_global(design: Design, cut: pd.Timestamp, setting: dict) -> xgb.Booster:
    """One global model on every row whose target month is <= ``cut``."""
    features, target, weight = design.training(
        cut, tuple(setting["features"]), setting.get("centred", False)
    )
    if setting["weighting"] == "mase":
        weight = np.where(np.isfinite(weight), weight, np.nan)
        cap = np.nanquantile(weight, setting["weight_clip_quantile"])
        weight = np.clip(np.nan_to_num(weight, nan=np.nanmedian(weight)), 0.0, cap)
        weight = weight / weight.mean()
    else:
        weight = None
    matrix = xgb.DMatrix(
        features, label=target, weight=weight, feature_names=list(setting["features"])
    )
    return xgb.train(setting["params"], matrix, num_boost_round=setting["rounds"])


def global_residuals(design: Design, window: str, setting: dict) -> pd.DataFrame:
    """Predicted log residuals at every origin of a window (models retrained each December)."""
    first, last = WINDOWS[window]
    names = tuple(setting["features"])
    out, model, model_cut = [], None, None
    for origin in months(first, last):
        cut = pd.Timestamp(f"{origin.year if origin.month == 12 else origin.year - 1}-12-01")
        if cut != model_cut:
            model, model_cut = train_global(design, cut, setting), cut
        rows = design.rows_at(origin, names)
        n_s, n_h, n_f = rows.shape
        matrix = xgb.DMatrix(rows.reshape(-1, n_f), feature_names=list(names))
        predicted = model.predict(matrix).reshape(n_s, n_h)
        out.append(
            pd.DataFrame(
                {
                    "series_id": np.repeat(design.series, n_h),
                    "origin": origin,
                    "horizon": np.tile(np.arange(1, n_h + 1), n_s),
                    "residual": predicted.ravel(),
                    "stat_cache": design.stat[design.origins.get_loc(origin)].ravel(),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


# --------------------------------------------------------------------------- scoring


def evaluation_frame(design: Design, window: str, cache: Path) -> pd.DataFrame:
    """Per scored (series, origin, horizon): actual, statistical log forecast, naive, scale.

    Scored series are those observed in the newest month (148, as in model_accuracy). When
    the window's production forecasts are cached, their columns (the champion and its
    members) are added, and the statistical combination is taken from them (the cache's
    must agree).
    """
    first, last = WINDOWS[window]
    values = design.values
    scorable = ~np.isnan(values[-1])
    frames = []
    for origin in months(first, last):
        i = design.origins.get_loc(origin)
        r = design.rows[i]
        for j, h in enumerate(range(1, HORIZON + 1)):
            ok = scorable & ~np.isnan(design.stat[i, :, j])
            frames.append(
                pd.DataFrame(
                    {
                        "series_id": np.asarray(design.series)[ok],
                        "origin": origin,
                        "horizon": h,
                        "actual": values[r + h, ok],
                        "stat_log": design.stat[i, ok, j],
                        NAIVE: values[r + h - 12, ok],
                        "scale": design.scale[i, ok],
                    }
                )
            )
    frame = pd.concat(frames, ignore_index=True)
    path = cache / f"production_{window}.parquet"
    if path.is_file():
        production = pd.read_parquet(path)
        production = production.drop(columns=["month"]).rename(
            columns={NAIVE: "production_naive", "scale": "production_scale"}
        )
        frame = frame.merge(production, on=["series_id", "origin", "horizon"], how="left")
        statistical = 0.5 * np.log1p(frame["forecast_theta"]) + 0.5 * np.log1p(
            frame["forecast_holt_winters"]
        )
        gap = float(np.nanmax(np.abs(statistical - frame["stat_log"])))
        assert gap < 1e-6, f"cached statistical members differ from production by {gap}"
        assert np.allclose(frame["production_scale"], frame["scale"])
        assert np.allclose(frame["production_naive"], frame[NAIVE], equal_nan=True)
        frame["stat_log"] = statistical
    return frame


def with_global(frame: pd.DataFrame, residuals: pd.DataFrame, blends) -> pd.DataFrame:
    """Add ``global w=..`` columns: statistical + w * predicted residual (and with XGBoost)."""
    merged = frame.merge(
        residuals[["series_id", "origin", "horizon", "residual"]],
        on=["series_id", "origin", "horizon"],
        how="left",
    )
    for w in blends:
        corrected = merged["stat_log"] + w * merged["residual"]
        merged[f"global w={w}"] = np.clip(np.expm1(corrected), 0.0, None)
        if "forecast_xgb" in merged:
            xgb_log = np.log1p(merged["forecast_xgb"])
            merged[f"global w={w} + XGBoost 0.25"] = np.clip(
                np.expm1(0.25 * xgb_log + 0.75 * corrected), 0.0, None
            )
    merged[STATISTICAL] = np.clip(np.expm1(merged["stat_log"]), 0.0, None)
    return merged


# -------------------------------------------------------------------------- production


def run_production(cache: Path, window: str) -> None:
    """Cache the production forecasts (champion, members, naive, scale) of a window."""
    data = load_aus_retail()
    recipe = Recipe(horizon=HORIZON)
    first, last = WINDOWS[window]
    frames, cpu = [], 0.0
    for origin in months(first, last):
        for _, frame in data.groupby("segment"):
            forecast, seconds = forecast_segment(frame[["series_id", "month", "y"]], origin, recipe)
            frames.append(forecast)
            cpu += seconds
    out = pd.concat(frames, ignore_index=True)
    out.to_parquet(cache / f"production_{window}.parquet")
    (cache / f"production_{window}.json").write_text(json.dumps({"cpu_s": round(cpu, 1)}))
    print(f"production {window}: {len(frames)} segment fits in {cpu:.0f} s CPU")


_NO_XS = tuple(f for f in FEATURES if not f.startswith("xs_"))
_NO_BIAS = tuple(f for f in FEATURES if f not in ("bias_12", "bias_1", "bias_h", "xs_bias_12"))
#: What was tried on the development and early windows (changes to the first setting, which
#: was SETTING with every feature, an uncentred target and w = 0.5), in the order tried.
VARIANTS: dict[str, dict] = {
    "first": {"features": FEATURES, "centred": False},
    "unweighted": {"features": FEATURES, "centred": False, "weighting": "none"},
    "absolute error": {
        "features": FEATURES,
        "centred": False,
        "params": {"objective": "reg:absoluteerror"},
    },
    "no cross-series means": {"centred": False},
    "no state / industry": {
        "features": tuple(f for f in FEATURES if f not in ("state", "industry")),
        "centred": False,
    },
    "no error features": {"features": _NO_BIAS, "centred": False},
    "depth 3, min_child_weight 200": {
        "features": FEATURES,
        "centred": False,
        "params": {"max_depth": 3, "min_child_weight": 200.0},
    },
    "depth 6": {"features": FEATURES, "centred": False, "params": {"max_depth": 6}},
    "centred": {"features": FEATURES},
    "centred, no cross-series means (adopted)": {},
    "centred, unweighted": {"features": FEATURES, "weighting": "none"},
    "centred, depth 6": {"features": FEATURES, "params": {"max_depth": 6}},
}


def variant_setting(change: dict) -> dict:
    """SETTING with a variant's changes (``params`` are merged)."""
    setting = {**SETTING, "params": dict(SETTING["params"])}
    for key, value in change.items():
        if key == "params":
            setting["params"].update(value)
        else:
            setting[key] = value
    return setting


def run_variants(cache: Path, windows: list[str]) -> None:
    """Mean MASE of every variant at blend weights 0.25 .. 1 (development windows only)."""
    assert "protocol" not in windows, "variants are chosen on development data only"
    design = Design(cache, Recipe(horizon=HORIZON).theta_weight)
    frames = {w: evaluation_frame(design, w, cache) for w in windows}
    blends = (0.25, 0.5, 0.75, 1.0)
    print("| variant | " + " | ".join(f"{w} w={b}" for w in windows for b in blends) + " |")
    for name, change in VARIANTS.items():
        setting = variant_setting(change)
        cells = []
        for window in windows:
            frame = with_global(frames[window], global_residuals(design, window, setting), blends)
            cells += [f"{score(frame, f'global w={b}')['mean_mase']:.4f}" for b in blends]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


# ---------------------------------------------------------------------------- report


def run_report(cache: Path, windows: list[str]) -> None:
    """Score every method per window, time the global model, write the results file."""
    start_machine = machine()
    started = time.process_time()
    design = Design(cache, Recipe(horizon=HORIZON).theta_weight)
    design_cpu = time.process_time() - started
    blend = SETTING["blend"]
    methods = {
        CHAMPION: "forecast",
        STATISTICAL: STATISTICAL,
        f"statistical + global residual model at w = {blend}": f"global w={blend}",
        "the same + per-segment XGBoost at 0.25 (champion's XGBoost weight)": (
            f"global w={blend} + XGBoost 0.25"
        ),
        "XGBoost per segment alone": "forecast_xgb",
        "seasonal naive": NAIVE,
    }
    results: dict[str, dict] = {}
    blends = sorted({0.25, 0.5, 0.75, 1.0, blend})
    for window in windows:
        frame = evaluation_frame(design, window, cache)
        residuals = global_residuals(design, window, SETTING)
        frame = with_global(frame, residuals, blends)
        rows = {}
        for label, column in methods.items():
            if column in frame:
                rows[label] = score(frame, column)
        naive = rows["seasonal naive"]["mean_mase"]
        for r in rows.values():
            r["vs_naive_pct"] = round(100 * (1 - r["mean_mase"] / naive), 1)
        blend_grid = {str(w): score(frame, f"global w={w}")["mean_mase"] for w in blends}
        production = cache / f"production_{window}.json"
        results[window] = {
            "origins": list(WINDOWS[window]),
            "methods": rows,
            "global_blend_grid_mean_mase": blend_grid,
            "production_fit_cpu_s": (
                json.loads(production.read_text())["cpu_s"] if production.is_file() else None
            ),
        }
        print(f"\n{window} window, origins {WINDOWS[window][0]} .. {WINDOWS[window][1]}")
        print("| method | mean MASE | vs naive % | median MASE | WAPE % | bias % | pairs |")
        print("|---|---|---|---|---|---|---|")
        for label, r in rows.items():
            print(
                f"| {label} | {r['mean_mase']:.4f} | {r['vs_naive_pct']:.1f} | "
                f"{r['median_mase']:.3f} | {r['wape_pct']:.2f} | {r['bias_pct']:+.2f} | "
                f"{r['pairs']} |"
            )
        print("global blend grid (mean MASE):", blend_grid)

    # Cost of one training on the full history (targets up to 2018-12), one thread.
    started = time.process_time()
    features, _, _ = design.training(design.months[-1], tuple(SETTING["features"]))
    train_global(design, design.months[-1], SETTING)
    train_cpu = time.process_time() - started
    members = json.loads((cache / "members.json").read_text())
    cost = {
        "global_model_training_rows": len(features),
        "global_model_train_cpu_s": round(train_cpu, 1),
        "feature_build_cpu_s_all_origins": round(design_cpu, 1),
        "member_backfill_cpu_s": members["cpu_s"],
        "member_backfill_origins": members["origins"],
        "member_cpu_s_per_origin_all_series": round(members["cpu_s"] / members["origins"], 2),
    }
    print(f"\ncost: {json.dumps(cost)}")
    result = {
        "experiment": "global XGBoost on the statistical combination's log residuals",
        "setting": {**SETTING, "features": list(SETTING["features"])},
        "first_training_origin": FIRST_ORIGIN,
        "retrain": "every December, targets <= that December; serves origins to November",
        "windows": results,
        "cost": cost,
        "machine": {**start_machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "cross_learning.json").write_text(json.dumps(result, indent=1))


def main() -> None:
    """Run one step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["members", "production", "variants", "report"])
    parser.add_argument("--window", choices=sorted(WINDOWS), help="for production")
    parser.add_argument(
        "--windows", help="report: default dev,early,protocol; variants: default dev,early"
    )
    parser.add_argument("--cache", default="/tmp/acc5", help="cache folder (not in git)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.step == "members":
        run_members(cache)
    elif args.step == "production":
        run_production(cache, args.window)
    elif args.step == "variants":
        run_variants(cache, (args.windows or "dev,early").split(","))
    else:
        run_report(cache, (args.windows or "dev,early,protocol").split(","))


if __name__ == "__main__":
    main()
