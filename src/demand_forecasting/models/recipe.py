"""A model recipe: everything that decides how a segment's model is fitted.

The recipe is stored on every model version (tag ``recipe``), so that validation can refit
the *champion's* recipe at each backtest origin and compare like with like, and so that a
version says exactly how it was made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: XGBoost settings of the boosting half (one thread: segments run in parallel instead).
#: 100 trees of depth 3 at learning rate 0.1 (were 200 of depth 5 at 0.05): 0.4x the fit
#: CPU and no loss on the development window (benchmarks/README.md, "Model accuracy").
DEFAULT_XGB_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_depth": 3,
    "learning_rate": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5.0,
    "tree_method": "hist",
    # 64 histogram bins instead of 256: half the fit time, no measurable accuracy cost here.
    "max_bin": 64,
    "n_jobs": 1,
    "random_state": 7,
}

#: The forecasting methods a recipe can name.
COMBINATION = "combination"
SEASONAL_NAIVE = "seasonal_naive"
METHODS = (COMBINATION, SEASONAL_NAIVE)

#: The longest horizon a recipe may have (months).
MAX_HORIZON = 24

#: Fields added after recipes were first stored, with the value an older recipe meant.
LEGACY_DEFAULTS: dict[str, Any] = {"theta_weight": 0.0, "method": COMBINATION}


@dataclass(frozen=True)
class Recipe:
    """How to fit one segment's forecaster.

    Attributes:
        horizon: months ahead forecast directly (bundle variable ``horizon``).
        train_window_months: origins used for training rows, counted back from the newest
            month with a full-horizon target (older origins are dropped).
        recency_halflife_months: sample weights halve every this many months back (0: off).
        xgb_weight: weight of XGBoost in the log-space blend with the statistical members
            (1: XGBoost only, 0: statistical members only; the booster is fitted either way,
            its forecast is reported as ``forecast_xgb``). Default 0.25: the product is a
            per-segment XGBoost, kept in the forecast at a quarter weight; on the development
            window that cost 1.5 % mean MASE against weight 0, on the protocol window it
            gained 0.2 % (benchmarks/README.md, "Model accuracy").
        theta_weight: weight of Theta among the statistical members (Holt-Winters has the
            rest; 0: Holt-Winters alone, the recipe of models trained before Theta existed).
        xgb_params: XGBoost regressor settings.
        method: ``combination`` (the members above) or ``seasonal_naive`` (each month's
            value a year before, nothing fitted: the governed fallback of a segment whose
            candidate the gate refused, see :mod:`demand_forecasting.models.fallback`).
        covariates: the dataset's planned covariates (its config's ``planned``) the XGBoost
            member reads at the target month (:mod:`.features`); such a model forecasts only
            with their plans. Empty (the default, and every recipe stored before) is left out
            of the JSON, so recipes without covariates keep their text and fingerprint.
    """

    horizon: int = 12
    train_window_months: int = 120
    recency_halflife_months: float = 0.0
    xgb_weight: float = 0.25
    theta_weight: float = 0.5
    xgb_params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_XGB_PARAMS))
    method: str = COMBINATION
    covariates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", tuple(str(c) for c in self.covariates))
        if self.method not in METHODS:
            raise ValueError(f"recipe method={self.method!r}: must be one of {', '.join(METHODS)}")
        if not 1 <= self.horizon <= MAX_HORIZON:
            raise ValueError(
                f"recipe horizon={self.horizon}: must be 1..{MAX_HORIZON} months (bundle "
                "variable horizon)"
            )
        if self.train_window_months < 12:
            raise ValueError(
                f"recipe train_window_months={self.train_window_months}: must be at least 12"
            )
        if not 0.0 <= self.xgb_weight <= 1.0:
            raise ValueError(f"recipe xgb_weight={self.xgb_weight}: must be within 0..1")
        if not 0.0 <= self.theta_weight <= 1.0:
            raise ValueError(f"recipe theta_weight={self.theta_weight}: must be within 0..1")
        if self.recency_halflife_months < 0:
            raise ValueError(
                f"recipe recency_halflife_months={self.recency_halflife_months}: "
                "must be >= 0 (0 turns recency weighting off)"
            )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the same recipe always gives the same text."""
        raw = asdict(self)
        if not raw["covariates"]:
            del raw["covariates"]
        return json.dumps(raw, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        """Parse :meth:`to_json` output (unknown keys are refused by the constructor).

        A recipe written before a field existed gets the value that reproduces the models
        it made (:data:`LEGACY_DEFAULTS`), not today's default.
        """
        raw = {**LEGACY_DEFAULTS, **json.loads(text)}
        params = {**DEFAULT_XGB_PARAMS, **raw.pop("xgb_params", {})}
        return cls(**raw, xgb_params=params)

    @property
    def is_seasonal_naive(self) -> bool:
        """True for the seasonal-naive fallback recipe (nothing is fitted)."""
        return self.method == SEASONAL_NAIVE

    def fingerprint(self) -> str:
        """A short hash of the recipe (part of a training's identity)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with some fields (or ``xgb_params`` keys, merged) changed."""
        raw = asdict(self)
        params = {**raw.pop("xgb_params"), **changes.pop("xgb_params", {})}
        raw.update(changes)
        return Recipe(**raw, xgb_params=params)


#: ``xgb_weight`` of a recipe with planned covariates: XGBoost alone (the statistical
#: members, which cannot see a promotion, stay its stacked feature). On the synthetic
#: development window (origins 2011-12 .. 2012-12) the combination at the default 0.25 had
#: mean MASE 0.979, at 0.75 0.737, XGBoost alone 0.685 (benchmarks/README.md, "Planned
#: covariates").
COVARIATE_XGB_WEIGHT = 1.0


def default_recipe(horizon: int, covariates: tuple[str, ...] = ()) -> Recipe:
    """The recipe the train task starts from: the defaults, the bundle's horizon and the
    dataset's planned covariates (its config's ``planned``); with covariates, XGBoost
    alone (:data:`COVARIATE_XGB_WEIGHT`). Without, exactly :class:`Recipe`'s defaults."""
    if not covariates:
        return Recipe(horizon=horizon)
    return Recipe(horizon=horizon, covariates=covariates, xgb_weight=COVARIATE_XGB_WEIGHT)
