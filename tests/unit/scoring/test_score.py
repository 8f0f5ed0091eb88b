"""score: champions forecast their segments on Spark; a rerun writes the same rows."""

from __future__ import annotations

import importlib.metadata
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scoring_support import register_champion

from demand_forecasting import names
from demand_forecasting.models.audit import RECONCILED, UNKNOWN_ACTOR
from demand_forecasting.monitoring.telemetry import TaskRecorder
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.task_values import LocalTaskValues
from demand_forecasting.scoring import score
from demand_forecasting.scoring.champion_models import ChampionModel

MONTHS = pd.date_range("2012-01-01", "2015-12-01", freq="MS")


def _history(segment: str, n_series: int) -> pd.DataFrame:
    rng = np.random.default_rng(len(segment))
    rows = []
    for s in range(n_series):
        season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(len(MONTHS)) / 12)
        values = 100 * (s + 1) * season * rng.normal(1, 0.02, len(MONTHS))
        rows += [
            (segment, f"{segment}-{s}", m.date(), float(v))
            for m, v in zip(MONTHS, values, strict=True)
        ]
    return pd.DataFrame(rows, columns=["segment", "series_id", "month", "y"])


def _forecast_rows(ctx: RunContext) -> list[tuple[object, ...]]:
    frame = ctx.tables.read(ctx.table(names.FORECASTS)).drop("run_timestamp")
    return sorted(tuple(r) for r in frame.collect())


def _gold_with_alpha_champion(ctx: RunContext, history: pd.DataFrame, scratch: Path) -> str:
    """Write ``history`` as the feature table and register segment alpha's champion on it."""
    ctx.tables.write(
        ctx.spark.createDataFrame(
            history, "segment string, series_id string, month date, y double"
        ),
        ctx.table(names.FEATURES),
        mode="overwrite",
    )
    alpha = history[history["segment"] == "alpha"]
    return register_champion(
        ctx,
        "main.demand_forecasting.demand_alpha",
        alpha[["series_id", "month", "y"]].assign(month=pd.to_datetime(alpha["month"])),
        scratch,
    )


def test_champions_forecast_their_series_and_a_rerun_changes_nothing(
    ctx: RunContext, tmp_path: Path
) -> None:
    history = pd.concat([_history("alpha", 2), _history("beta", 1)], ignore_index=True)
    version = _gold_with_alpha_champion(ctx, history, tmp_path)
    store = LocalTaskValues()
    ctx.task_values = store

    with store.running("score"), TaskRecorder("score", "dev") as recorder:
        summary = score.run(ctx, score.ScoreConfig())

    assert summary.run_month == date(2015, 12, 1)
    assert summary.segments_scored == ["alpha"]
    assert summary.segments_without_champion == ["beta"]
    assert summary.series_forecast == 2 and summary.rows_out == 6
    assert ctx.handover.read("score", "segments_without_champion") == ["beta"]
    rows = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    assert sorted(rows["horizon"].unique()) == [1, 2, 3]
    assert sorted(rows["month"].unique()) == [date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)]
    assert (rows["model_id"] == f"main.demand_forecasting.demand_alpha/{version}").all()
    assert (rows["forecast"] > 0).all() and (rows["run_month"] == date(2015, 12, 1)).all()
    assert str(rows["run_timestamp"].iloc[0]).startswith("2015-12-01")
    # The seconds of each champion's work go to the task's telemetry, not to the table.
    assert score.SECONDS_COLUMN not in rows.columns
    assert recorder.record is not None and recorder.record.segment_seconds is not None
    assert set(recorder.record.segment_seconds) == {"alpha"}
    assert recorder.record.segment_seconds["alpha"] > 0
    first = _forecast_rows(ctx)

    with store.running("score"):
        score.run(ctx, score.ScoreConfig())

    assert _forecast_rows(ctx) == first
    history_of_table = ctx.tables.delta_table(ctx.table(names.FORECASTS)).history().count()
    assert history_of_table == 2  # the rerun is a new version with the same contents
    # The champion was set in the registry without an audit row: the first score added the
    # reconciled row (who and why unknown), the rerun nothing.
    audit = ctx.tables.read(ctx.table(names.AUDIT)).toPandas()
    assert audit[
        ["model_name", "action", "from_version", "to_version", "actor"]
    ].values.tolist() == [
        ["main.demand_forecasting.demand_alpha", RECONCILED, None, version, UNKNOWN_ACTOR]
    ]


def test_a_series_without_a_value_in_the_newest_month_is_named_not_dropped_silently(
    ctx: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = _history("alpha", 4)
    # alpha-2's newest row was quarantined (or the series stopped): it has no 2015-12 value.
    # alpha-3 stopped in 2013: old news, not named every month.
    history = history[
        ~((history["series_id"] == "alpha-2") & (history["month"] == date(2015, 12, 1)))
        & ~((history["series_id"] == "alpha-3") & (history["month"] > date(2013, 6, 1)))
    ]
    _gold_with_alpha_champion(ctx, history, tmp_path)
    store = LocalTaskValues()
    ctx.task_values = store

    with store.running("score"), caplog.at_level("WARNING"):
        summary = score.run(ctx, score.ScoreConfig())

    assert summary.series_forecast == 2
    assert summary.series_not_forecast == ["alpha-2"]
    assert store.values["score"]["series_not_forecast"] == 1
    assert "1 series of the scored segments have no forecast for 2015-12" in caplog.text
    assert "alpha-2" in caplog.text and "alpha-3" not in caplog.text


def test_a_segment_without_a_value_in_the_run_month_is_not_forecast_from_an_older_origin(
    ctx: RunContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every 2015-12 row of beta was quarantined: beta's newest month is 2015-11. Its champion
    # must not forecast from 2015-11 into the 2015-12 run (a stale origin under this run
    # month, counted as forecast and scored twice by the accuracy monitor); its series are
    # named like any series without a value in the run month.
    history = pd.concat([_history("alpha", 2), _history("beta", 2)], ignore_index=True)
    history = history[~((history["segment"] == "beta") & (history["month"] == date(2015, 12, 1)))]
    _gold_with_alpha_champion(ctx, history, tmp_path)
    beta = history[history["segment"] == "beta"]
    register_champion(
        ctx,
        "main.demand_forecasting.demand_beta",
        beta[["series_id", "month", "y"]].assign(month=pd.to_datetime(beta["month"])),
        tmp_path,
    )
    store = LocalTaskValues()
    ctx.task_values = store

    with store.running("score"), caplog.at_level("WARNING"):
        summary = score.run(ctx, score.ScoreConfig())

    assert summary.run_month == date(2015, 12, 1)
    rows = ctx.tables.read(ctx.table(names.FORECASTS)).toPandas()
    assert set(rows["origin"]) == {date(2015, 12, 1)}
    assert set(rows["segment"]) == {"alpha"}
    assert summary.series_forecast == 2
    assert summary.series_not_forecast == ["beta-0", "beta-1"]
    assert "beta" in caplog.text and "2015-11" in caplog.text


def test_model_output_becomes_forecast_rows_of_the_segment() -> None:
    from demand_forecasting.scoring.champion_models import ChampionModel

    model = ChampionModel("alpha", "main.s.demand_alpha", "3", "/tmp/x")
    prediction = pd.DataFrame(
        {
            "series_id": ["a"],
            "origin": [pd.Timestamp("2015-12-01")],
            "horizon": [1],
            "month": [pd.Timestamp("2016-01-01")],
            "forecast": [10.0],
            "forecast_lower": [8.0],
            "forecast_upper": [12.5],
            "forecast_xgb": [9.0],
            "forecast_holt_winters": [11.0],
        }
    )
    rows = score.forecast_rows(prediction, model, seconds=0.25)
    assert rows.iloc[0].to_dict() == {
        "segment": "alpha",
        "series_id": "a",
        "origin": date(2015, 12, 1),
        "horizon": 1,
        "month": date(2016, 1, 1),
        "forecast": 10.0,
        "forecast_lower": 8.0,
        "forecast_upper": 12.5,
        "forecast_xgb": 9.0,
        "forecast_holt_winters": 11.0,
        "plan_missing": False,  # a model without planned covariates (or saved before them)
        "model_name": "main.s.demand_alpha",
        "model_version": "3",
        "score_seconds": 0.25,
    }
    # A model without an interval (an older champion's output): bounds are NaN, not missing.
    older = score.forecast_rows(
        prediction.drop(columns=["forecast_lower", "forecast_upper"]), model
    )
    assert older[["forecast_lower", "forecast_upper"]].isna().all().all()
    assert model.model_id == "main.s.demand_alpha/3"
    assert score.forecast_rows(prediction.iloc[0:0], model).empty


def test_a_champion_that_cannot_forecast_is_named_by_its_segment(tmp_path: Path) -> None:
    model = ChampionModel("tasmania__food", "demand_tasmania__food", "3", str(tmp_path / "gone"))
    group = pd.DataFrame(
        {"segment": ["tasmania__food"], "series_id": ["a"], "month": ["2015-12-01"], "y": [1.0]}
    )
    with pytest.raises(
        score.SegmentScoringError,
        match=r"segment tasmania__food: champion demand_tasmania__food/3 could not forecast",
    ):
        score.score_group({model.segment: model})(group)


def test_model_input_is_sorted_typed_history() -> None:
    group = pd.DataFrame(
        {
            "segment": "a",
            "series_id": ["b", "a"],
            "month": [date(2015, 2, 1), date(2015, 1, 1)],
            "y": [1, None],
        }
    )
    frame = score.model_input(group)
    assert list(frame.columns) == ["series_id", "month", "y"]
    assert frame["series_id"].tolist() == ["a", "b"]
    assert str(frame["month"].dtype).startswith("datetime64") and np.isnan(frame["y"][0])


def test_plan_rows_reach_only_a_model_with_planned_covariates() -> None:
    group = pd.DataFrame(
        {
            "segment": "a",
            "series_id": ["a", "a", "a"],
            "month": [date(2015, 11, 1), date(2015, 12, 1), date(2016, 1, 1)],
            "y": [1.0, 2.0, None],
            "price": [2.0, 2.0, None],
            "is_plan": [False, False, True],
        }
    )
    # a model without covariates (any model saved before them): the history as before
    plain = score.model_input(group)
    assert list(plain.columns) == ["series_id", "month", "y"] and len(plain) == 2
    with_plans = score.model_input(group, ("price",))
    assert list(with_plans.columns) == ["series_id", "month", "y", "price", "is_plan"]
    assert with_plans["is_plan"].tolist() == [False, False, True]


def test_a_model_logged_before_covariates_takes_none(ctx: RunContext, tmp_path: Path) -> None:
    import mlflow.pyfunc

    history = _history("alpha", 1)
    register_champion(
        ctx,
        "main.demand_forecasting.demand_alpha",
        history[["series_id", "month", "y"]].assign(month=pd.to_datetime(history["month"])),
        tmp_path,
    )
    model = mlflow.pyfunc.load_model("models:/main.demand_forecasting.demand_alpha@champion")
    assert score.input_covariates(model) == ()


def test_environment_problems_name_what_this_environment_lacks(tmp_path: Path) -> None:
    from demand_forecasting.scoring.champion_models import environment_problems

    (tmp_path / "requirements.txt").write_text(
        f"mlflow=={importlib.metadata.version('mlflow')}\n# a comment\n-r other.txt\n"
        "numpy==0.0.1\nno-such-distribution==1.0\n"
    )
    (tmp_path / "python_env.yaml").write_text("python: 2.7.18\nbuild_dependencies: []\n")
    assert environment_problems(tmp_path) == [
        f"numpy==0.0.1 is installed as {importlib.metadata.version('numpy')}",
        "no-such-distribution==1.0 is not installed",
        f"Python 2.7 is {sys.version_info.major}.{sys.version_info.minor} here",
    ]
    running = f"{sys.version_info.major}.{sys.version_info.minor}.0"
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "python_env.yaml").write_text(f"python: {running}\n")
    assert environment_problems(tmp_path) == []


def test_warm_up_leaves_a_python_worker_with_the_scoring_modules(ctx: RunContext) -> None:
    from demand_forecasting.scoring import worker_warmup

    warm_up = worker_warmup.WorkerWarmUp(ctx.spark)
    warm_up.wait()
    assert warm_up.error is None

    def loaded(batches):  # type: ignore[no-untyped-def]
        import sys

        for _ in batches:
            pass
        modules = ("demand_forecasting.scoring.score", "demand_forecasting.models.pyfunc")
        yield pd.DataFrame({"loaded": [all(m in sys.modules for m in modules)]})

    frame = ctx.spark.range(1, numPartitions=1).mapInPandas(loaded, "loaded boolean")
    assert [r["loaded"] for r in frame.collect()] == [True]
