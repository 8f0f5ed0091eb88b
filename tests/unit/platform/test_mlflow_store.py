"""MLflow on the local platform: sqlite tracking + registry with aliases, artifacts on disk."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from mlflow.exceptions import MlflowException

from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.mlflow_setup import ensure_experiment


def test_store_is_local_sqlite(ctx: RunContext, state_dir: Path) -> None:
    db = state_dir.resolve() / "mlflow" / "mlflow.db"
    assert ctx.mlflow_store.tracking_uri == f"sqlite:///{db}"
    assert ctx.mlflow_store.registry_uri == ctx.mlflow_store.tracking_uri
    assert mlflow.get_tracking_uri() == ctx.mlflow_store.tracking_uri


def test_xgboost_model_round_trip_with_aliases(ctx: RunContext, state_dir: Path) -> None:
    experiment_id = ensure_experiment(ctx.mlflow, "/Shared/test", ctx.mlflow_store.artifact_root)
    assert ensure_experiment(ctx.mlflow, "/Shared/test", None) == experiment_id

    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 3))
    target = features @ np.array([1.0, -2.0, 0.5])
    model = xgb.XGBRegressor(n_estimators=5, max_depth=2, nthread=1).fit(features, target)

    name = "main.demand_forecasting.test_segment"
    versions = []
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment_id):
            info = mlflow.xgboost.log_model(
                model,
                name="model",
                pip_requirements=["xgboost-cpu==3.2.0"],
                input_example=features[:2],
            )
        registered = mlflow.register_model(info.model_uri, name)
        versions.append(registered.version)

    ctx.mlflow.set_registered_model_alias(name, "champion", versions[0])
    ctx.mlflow.set_registered_model_alias(name, "challenger", versions[1])
    champion = ctx.mlflow.get_model_version_by_alias(name, "champion")
    assert champion.version == versions[0]

    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_allclose(loaded.predict(features[:5]), model.predict(features[:5]), rtol=1e-6)
    # artifacts are files under the state folder, not in the working directory
    assert any((state_dir / "mlflow" / "artifacts").rglob("MLmodel"))

    ctx.mlflow.delete_registered_model_alias(name, "challenger")
    with pytest.raises(MlflowException):
        ctx.mlflow.get_model_version_by_alias(name, "challenger")


def test_installed_versions_are_looked_up_once_per_process(ctx: RunContext) -> None:
    from importlib.metadata import version

    from mlflow.utils import requirements_utils

    lookup = requirements_utils._get_installed_version
    assert hasattr(lookup, "cache_info"), "configure_mlflow did not install the cache"
    assert lookup("pandas") == version("pandas")
    hits = lookup.cache_info().hits
    assert lookup("pandas") == version("pandas")
    assert lookup.cache_info().hits == hits + 1
    # MLflow's requirement check goes through it and still finds a real mismatch.
    mismatch = requirements_utils._check_requirement_satisfied("pandas==0.0.1")
    assert mismatch is not None and mismatch.installed_version == version("pandas")
    with pytest.raises(ModuleNotFoundError):
        lookup("no-such-package-xyz")


def test_warm_up_builds_the_package_map_off_the_logging_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.utils import requirements_utils

    from demand_forecasting.platform.mlflow_setup import warm_up_model_logging

    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    thread = warm_up_model_logging()
    thread.join(timeout=60)
    assert not thread.is_alive()
    modules = requirements_utils._MODULES_TO_PACKAGES
    assert modules is not None and "xgboost-cpu" in modules["xgboost"]
