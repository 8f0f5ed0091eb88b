"""train -> validate_models -> deploy through their entry points on a few real segments,
then ``demand-forecasting rollback`` through the CLI; the job YAML names these entry points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml

from demand_forecasting import cli, names
from demand_forecasting.models import deploy, train, validate
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.registry import CHAMPION, PREVIOUS_CHAMPION, SegmentRegistry
from demand_forecasting.platform.context import build_context
from models_support import history, write_gold

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SEGMENTS = [
    "victoria__department_stores",
    "tasmania__food_retailing",
    "western_australia__household_goods_retailing",
]
COMMON = ["--catalog", "main", "--schema", "demand_forecasting", "--target", "dev"]
FEW_TREES = '{"xgb_params": {"n_estimators": 40, "learning_rate": 0.15}}'


def test_entry_points_train_validate_deploy_and_rollback(spark: Any, state_dir: Path) -> None:
    ctx = build_context("dev", "main", "demand_forecasting", state_dir=state_dir)
    write_gold(ctx, history(SEGMENTS, until="2017-06-01", since="2007-01-01"))
    segments = ",".join(SEGMENTS)
    train.main(
        [
            *COMMON,
            "--segments",
            segments,
            "--experiment",
            "/Shared/integration",
            "--recipe",
            FEW_TREES,
            "--git-commit",
            "deadbeef",
        ]
    )
    validate.main(
        [*COMMON, "--segments", segments, "--backtest-origins", "2", "--mase-tolerance", "0.02"]
    )
    deploy.main([*COMMON, "--segments", segments, "--require-approval", "false"])

    registry = SegmentRegistry(ctx.mlflow, "main", "demand_forecasting", "demand")
    evaluations = ctx.tables.read(ctx.table(names.EVALUATIONS)).toPandas()
    stand_ins = evaluations["reasons"].str.startswith("seasonal-naive fallback")
    candidates = evaluations[~stand_ins]
    assert sorted(candidates["segment"]) == sorted(SEGMENTS)
    refused = set(candidates.loc[~candidates["passed"], "segment"])
    # Every segment has a champion: its own model where the candidate passed the gate, the
    # seasonal-naive fallback (evaluated too) where it was refused.
    champions = registry.segments_with(SEGMENTS, CHAMPION)
    assert sorted(champions) == sorted(SEGMENTS)
    assert {s for s, v in champions.items() if is_fallback(v)} == refused
    assert sorted(evaluations.loc[stand_ins, "segment"]) == sorted(refused)
    passed = sorted(set(SEGMENTS) - refused)
    assert passed, "no segment passed validation on real data"

    segment = passed[0]
    model = mlflow.pyfunc.load_model(f"models:/{registry.name(segment)}@champion")
    recent = history([segment], until="2017-06-01", since="2014-01-01")
    forecast = model.predict(
        recent[["series_id", "month", "y"]].assign(month=lambda f: pd.to_datetime(f["month"]))
    )
    assert set(forecast["horizon"]) == set(range(1, 13))

    # a second version promoted, then rolled back with the people's CLI
    train.main(
        [
            *COMMON,
            "--segments",
            segment,
            "--experiment",
            "/Shared/integration",
            "--recipe",
            '{"xgb_params": {"n_estimators": 40, "learning_rate": 0.15, "random_state": 3}}',
        ]
    )
    validate.main(
        [*COMMON, "--segments", segment, "--backtest-origins", "2", "--mase-tolerance", "0.9"]
    )
    deploy.main([*COMMON, "--segments", segment])
    assert str(registry.alias(segment, PREVIOUS_CHAMPION).version) == "1"  # type: ignore[union-attr]
    assert cli.main(["rollback", segment, *COMMON, "--reason", "integration test"]) == 0
    assert str(registry.alias(segment, CHAMPION).version) == "1"  # type: ignore[union-attr]
    audit = ctx.tables.read(ctx.table(names.AUDIT)).toPandas()
    assert audit.query("segment == @segment")["action"].tolist().count("rollback") == 1


def test_jobs_chain_the_model_tasks_by_their_entry_points() -> None:
    scripts = (REPO / "pyproject.toml").read_text()
    full = yaml.safe_load((REPO / "resources" / "training_job.yml").read_text())
    tasks = full["resources"]["jobs"]["full_retrain"]["tasks"]
    assert [t["task_key"] for t in tasks] == ["train", "validate_models", "deploy"]
    for task in tasks:
        entry = task["python_wheel_task"]["entry_point"]
        assert f"{entry} = " in scripts
    monthly = yaml.safe_load((REPO / "resources" / "monthly_job.yml").read_text())
    by_key = {t["task_key"]: t for t in monthly["resources"]["jobs"]["monthly"]["tasks"]}
    assert by_key["train"]["depends_on"] == [{"task_key": "retrain_needed", "outcome": "true"}]
    assert by_key["deploy"]["depends_on"] == [{"task_key": "validate_models"}]
