"""Backtest one segment's candidate, champion and seasonal naive: the validate group UDF.

:func:`segment_evaluator` returns the function ``applyInPandas`` runs per segment: it
backtests each recipe on the last K origins (:func:`~demand_forecasting.models.backtest.backtest`)
and returns one row per method with MASE, WAPE and bias over the rows every method forecast.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping

import pandas as pd

from demand_forecasting.models.backtest import NAIVE, backtest, backtest_origins, comparable
from demand_forecasting.models.metrics import segment_accuracy
from demand_forecasting.models.panel import panel_from_history
from demand_forecasting.models.recipe import Recipe

CANDIDATE, CHAMPION = "candidate", "champion"

#: Spark schema of an evaluation result row.
RESULT_SCHEMA = (
    "segment string, method string, mase double, wape double, bias double, pairs long, "
    "first_origin date, last_origin date, seconds double, error string"
)
RESULT_COLUMNS = [part.strip().split(" ")[0] for part in RESULT_SCHEMA.split(",")]


def evaluate_segment(
    history: pd.DataFrame, recipes: Mapping[str, Recipe], origins: int
) -> list[dict[str, object]]:
    """Backtest ``recipes`` (and seasonal naive) on the last ``origins`` full-horizon origins.

    Returns:
        One row per method (keys :data:`RESULT_COLUMNS` but ``segment``).
    """
    started = time.perf_counter()
    covariates = tuple(dict.fromkeys(c for r in recipes.values() for c in r.covariates))
    panel = panel_from_history(history, covariates)
    horizon = max(r.horizon for r in recipes.values())
    chosen = backtest_origins(panel.end, horizon, origins)
    frame = backtest(panel, recipes, chosen, horizon)
    methods = [*recipes, NAIVE]
    rows = comparable(frame, methods)
    seconds = time.perf_counter() - started
    return [
        {
            "method": method,
            **segment_accuracy(rows, method).__dict__,
            "first_origin": chosen[0].date(),
            "last_origin": chosen[-1].date(),
            "seconds": seconds,
            "error": None,
        }
        for method in methods
    ]


def segment_evaluator(
    plan: Mapping[str, Mapping[str, str]], origins: int
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The per-segment function for ``applyInPandas``.

    Args:
        plan: ``{segment: {method: recipe JSON}}`` (methods ``candidate`` and, when the
            segment has one, ``champion``).
        origins: backtest origins K.
    """

    def evaluate(rows: pd.DataFrame) -> pd.DataFrame:
        segment = str(rows["segment"].iloc[0])
        started = time.perf_counter()
        try:
            recipes = {m: Recipe.from_json(text) for m, text in plan[segment].items()}
            results = evaluate_segment(rows, recipes, origins)
        except Exception as exc:  # reported per segment by the driver
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            results = [
                {
                    "method": CANDIDATE,
                    "seconds": time.perf_counter() - started,
                    "error": text[:2000],
                }
            ]
        return pd.DataFrame(
            [{**dict.fromkeys(RESULT_COLUMNS), **r, "segment": segment} for r in results],
            columns=RESULT_COLUMNS,
        )

    return evaluate
