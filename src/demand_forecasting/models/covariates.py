"""Plans of the planned covariates at forecast time: refused when absent, stood in when holey.

A model trained with planned covariates (its recipe's ``covariates``) reads each at the
target month. It never forecasts as if a plan said 0:

- input without the plans at all (no covariate column, or no rows for the months forecast)
  is refused with :class:`MissingPlanError`;
- a series whose plan is missing for some forecast month gets a stand-in: its median of the
  covariate over the 12 months up to the origin, or where it has none, the segment's median
  over those months. Its forecast rows for those months say so (``plan_missing``), and
  scoring counts them in its log.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from demand_forecasting.models.features import LEVEL_MONTHS
from demand_forecasting.models.panel import Panel


class MissingPlanError(ValueError):
    """A model with planned covariates was asked to forecast without their plans."""


def require_plans(panel: Panel, covariates: Sequence[str], horizon: int) -> None:
    """Check that ``panel`` carries every covariate through the ``horizon`` months forecast.

    Raises:
        MissingPlanError: naming the covariates and months missing, and what to pass.
    """
    absent = [c for c in covariates if c not in panel.covariates]
    short = [
        c
        for c in covariates
        if c in panel.covariates and len(panel.covariates[c]) < len(panel.months) + horizon
    ]
    if absent or short:
        raise MissingPlanError(
            f"this model reads planned covariates {list(covariates)} at the forecast months, "
            f"but its input has {'no column ' + str(absent) if absent else ''}"
            f"{' and ' if absent and short else ''}"
            f"{'no plan rows for all ' + str(horizon) + ' months after ' if short else ''}"
            f"{panel.end:%Y-%m}{' for ' + str(short) if short else ''}: pass one row per "
            f"series and month after the history with is_plan = true and the planned values "
            "(scoring reads them from silver_plans); it does not forecast with made-up plans"
        )


def stand_in_plans(
    panel: Panel, covariates: Sequence[str], horizon: int
) -> tuple[Panel, np.ndarray]:
    """``panel`` with each missing plan of the ``horizon`` months forecast stood in.

    Returns:
        The panel (covariates filled after its newest month) and a ``horizon x series``
        mask: True where a series' plan for that month was missing for some covariate.
    """
    newest = len(panel.months) - 1
    targets = slice(newest + 1, newest + 1 + horizon)
    missing = np.zeros((horizon, len(panel.series)), dtype=bool)
    filled = dict(panel.covariates)
    for name in covariates:
        values = panel.covariates[name].copy()
        future = values[targets]
        holes = np.isnan(future)
        if holes.any():
            recent = values[max(0, newest + 1 - LEVEL_MONTHS) : newest + 1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: the segment's
                own = np.nanmedian(recent, axis=0)
                segment = np.nanmedian(recent)
            stand_in = np.where(np.isnan(own), segment, own)
            values[targets] = np.where(holes, stand_in[None, :], future)
            missing |= holes
        filled[name] = values
    return Panel(panel.months, panel.series, panel.values, filled), missing
