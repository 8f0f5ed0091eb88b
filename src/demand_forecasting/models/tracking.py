"""MLflow logging of a training: one parent run, one child run and model version per segment.

Everything is logged from the driver with the client API in few calls (one ``log_batch`` and
one ``log_artifacts`` per segment); the model is logged as a pyfunc with explicit
requirements, a signature and an input example, without replaying the example through the
serving path for every model (the first model of a training is loaded back and checked
instead), so that logging a model costs a few tenths of a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID
from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

from demand_forecasting.models.forecaster import BOOSTER_FILE, STATE_FILE
from demand_forecasting.models.pyfunc import check_logged_model, log_forecaster
from demand_forecasting.models.registry import TAG_VALUE_MAX
from demand_forecasting.models.segment_training import read_input_example
from demand_forecasting.monitoring.job_run import job_parent_run
from demand_forecasting.platform.mlflow_setup import ensure_experiment

if TYPE_CHECKING:
    from demand_forecasting.models.train import TrainConfig
    from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

PLOT_FILE = "forecast_vs_actual.png"
#: Run param holding the candidate's backtest (JSON), read back by validate_models.
BACKTEST_PARAM = "backtest"
IMPORTANCE_FILE = "feature_importance.json"


@dataclass(frozen=True)
class LoggedSegment:
    """A segment's registered version and what logging it cost."""

    version: str
    run_id: str
    seconds: float


def compact_features(names: list[str], limit: int = TAG_VALUE_MAX) -> str:
    """Feature names with numbered runs folded: ``rel_lag_00..rel_lag_23,horizon,...``.

    Cut to ``limit`` characters (a Unity Catalog tag value) when there are many: the text
    then ends in ``,...(+N more)``; the full list is in the model's state.
    """
    out: list[str] = []  # each item a name or a folded run of names
    sizes: list[int] = []  # how many names each item stands for
    run: list[str] = []
    for name in [*names, ""]:
        match = re.fullmatch(r"(.*_)(\d+)", name)
        if run and match and re.fullmatch(r"(.*_)(\d+)", run[-1]):
            previous = re.fullmatch(r"(.*_)(\d+)", run[-1])
            assert previous is not None
            if (
                previous.group(1) == match.group(1)
                and int(match.group(2)) == int(previous.group(2)) + 1
            ):
                run.append(name)
                continue
        if run:
            out.append(run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}")
            sizes.append(len(run))
        run = [name] if name else []
    text = ",".join(out)
    kept = len(out)
    while len(text) > limit and kept > 0:
        kept -= 1
        text = ",".join([*out[:kept], f"...(+{sum(sizes[kept:])} more)"])
    return text


def artifact_hash(booster: bytes | None, state: str) -> str:
    """SHA-256 of the model's files (booster UBJ bytes and state JSON)."""
    digest = hashlib.sha256()
    digest.update(booster or b"")
    digest.update(state.encode())
    return digest.hexdigest()


def table_id(ctx: RunContext, table: str) -> str | None:
    """The Delta table's id (``DESCRIBE DETAIL``), the same on Unity Catalog and locally."""
    row = ctx.tables.delta_table(table).detail().select("id").first()
    return str(row["id"]) if row is not None and row["id"] is not None else None


#: Run tag naming the dataset config a run trained on (filter: ``tags.dataset = 'pbs'``).
DATASET_TAG = "dataset"


def segment_run_name(dataset: str, segment: str) -> str:
    """A segment's training run name: its dataset too, since datasets share the experiment."""
    return f"{dataset}/{segment}"


class TrainingLogger:
    """Logs one training (parent run) and its segments (child runs, model versions)."""

    def __init__(self, ctx: RunContext, cfg: TrainConfig, table: str, table_version: int) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.table = table
        self.table_version = table_version
        self.client = ctx.mlflow
        self.experiment_id = ""
        self.parent_run_id = ""
        self.table_id = table_id(ctx, table)
        # The first model of a training is loaded back and predicts its example once.
        self.model_checked = False

    def start(self, segments: int) -> str:
        """Create the parent run (under the job's parent run when there is one)."""
        store = self.ctx.mlflow_store
        self.experiment_id = ensure_experiment(
            self.client, self.cfg.experiment, store.artifact_root
        )
        tags = {
            "kind": "training",
            DATASET_TAG: self.cfg.dataset,
            "bundle_target": self.ctx.target,
            "git_commit": self.cfg.git_commit,
        }
        if self.cfg.job_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = job_parent_run(
                self.client,
                self.cfg.experiment,
                self.cfg.job_run_id,
                target=self.ctx.target,
                artifact_root=store.artifact_root,
            )
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"train {self.cfg.dataset} {self.ctx.clock():%Y-%m-%d %H:%M}",
            tags=tags,
        )
        self.parent_run_id = run.info.run_id
        self.client.log_batch(
            self.parent_run_id,
            params=[
                Param("recipe", self.cfg.recipe.to_json()),
                Param("training_table", self.table),
                Param("training_table_version", str(self.table_version)),
                Param("segments_requested", str(segments)),
                Param("parallel", str(self.cfg.parallel)),
            ],
        )
        return self.parent_run_id

    def log_segment(
        self, row: Mapping[str, Any], model_name: str, data_hash: str, identity: str, scratch: Path
    ) -> LoggedSegment:
        """Child run + pyfunc model + registered version for one trained segment."""
        started = time.perf_counter()
        segment = str(row["segment"])
        metrics = json.loads(row["metrics"])
        state = json.loads(row["state"])
        now = int(time.time() * 1000)
        run = self.client.create_run(
            self.experiment_id,
            run_name=segment_run_name(self.cfg.dataset, segment),
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                "segment": segment,
                DATASET_TAG: self.cfg.dataset,
                "bundle_target": self.ctx.target,
                "git_commit": self.cfg.git_commit,
            },
        )
        run_id = run.info.run_id
        params = {
            "recipe": self.cfg.recipe.to_json(),
            "horizon": str(self.cfg.recipe.horizon),
            "series_count": str(row["series_count"]),
            "trained_until": str(row["trained_until"]),
            "training_table": self.table,
            "training_table_version": str(self.table_version),
            BACKTEST_PARAM: str(row["backtest"]),
        }
        self._log_lineage(run_id, segment, data_hash)
        (scratch / "run").mkdir(parents=True, exist_ok=True)
        (scratch / "run" / PLOT_FILE).write_bytes(bytes(row["plot"]))
        (scratch / "run" / IMPORTANCE_FILE).write_text(
            json.dumps(json.loads(row["importance"]), indent=1, sort_keys=True)
        )
        # Straight to the run's artifact location (create_run returned it), which saves
        # the client's lookup of the run to find it.
        repository = artifact_repository(run.info.artifact_uri, self.ctx.mlflow_store.tracking_uri)
        repository.log_artifacts(str(scratch / "run"))

        model_dir = scratch / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        if row["booster"] is not None:  # XGBoost's UBJ bytes, as the worker saved them
            (model_dir / BOOSTER_FILE).write_bytes(bytes(row["booster"]))
        (model_dir / STATE_FILE).write_text(str(row["state"]))
        example = read_input_example(str(row["example"]))
        # The model gets the parameters from here (Model.log would copy them from the run).
        model_uri = log_forecaster(
            model_dir, example, run=(self.experiment_id, run_id), params=params
        )
        if not self.model_checked:
            check_logged_model(model_uri, example)
            self.model_checked = True
        # Parameters and metrics in one batch, after the model: metrics logged before it make
        # MLflow re-read each one's history to link it to the model (a query per metric).
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
            + [Metric("fit_seconds", float(row["fit_seconds"]), now, 0)],
            params=[Param(key, value) for key, value in params.items()],
            tags=[RunTag("data_hash", data_hash)],
        )
        version_tags = {
            "segment": segment,
            "git_commit": self.cfg.git_commit,
            "bundle_target": self.ctx.target,
            "training_table": self.table,
            "training_table_version": str(self.table_version),
            "data_hash": data_hash,
            "features": compact_features(list(state["feature_names"])),
            "run_id": run_id,
            "recipe_hash": self.cfg.recipe.fingerprint(),
            "artifact_hash": artifact_hash(
                bytes(row["booster"]) if row["booster"] is not None else None, str(row["state"])
            ),
            "trained_until": str(row["trained_until"]),
            "training_identity": identity,
        }
        # One registry call (the registered model exists: train ensured it), tags and
        # description included, instead of mlflow.register_model's create-model attempt and
        # a separate description update.
        version = self.client.create_model_version(
            model_name,
            source=model_uri,
            run_id=run_id,
            tags=version_tags,
            description=f"Candidate for {segment}, trained on {self.table} version "
            f"{self.table_version} up to {row['trained_until']} (run {run_id}). "
            "Not yet validated.",
            model_id=logged_model_id(model_uri),
        )
        self.client.set_terminated(run_id)
        seconds = time.perf_counter() - started
        self.client.log_metric(run_id, "log_seconds", seconds)
        return LoggedSegment(str(version.version), run_id, seconds)

    def _log_lineage(self, run_id: str, segment: str, data_hash: str) -> None:
        """The training data as a dataset input: the Delta table, its version, the hash."""
        # The table id is given so that MLflow does not look it up through a workspace API.
        source = DeltaDatasetSource(
            delta_table_name=self.table,
            delta_table_version=self.table_version,
            delta_table_id=self.table_id,
        )
        dataset = MetaDataset(  # type: ignore[abstract]
            source, name=f"{self.table}@v{self.table_version}:{segment}", digest=data_hash[:36]
        )
        self.client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")]
                )
            ],
        )

    def finish(
        self, candidates: Mapping[str, str], failed: Mapping[str, str], fit_seconds: float
    ) -> None:
        """Close the parent run with the training's counts (FAILED if a segment failed)."""
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.parent_run_id,
            metrics=[
                Metric("segments_registered", float(len(candidates)), now, 0),
                Metric("segments_failed", float(len(failed)), now, 0),
                Metric("fit_seconds", fit_seconds, now, 0),
            ],
        )
        if failed:
            self.client.set_tag(
                self.parent_run_id, "failed_segments", ",".join(sorted(failed))[:5000]
            )
        self.client.set_terminated(self.parent_run_id, "FAILED" if failed else "FINISHED")


def artifact_repository(artifact_uri: str, tracking_uri: str) -> ArtifactRepository:
    """The artifact repository of a run's ``artifact_uri``, as the MLflow client builds it
    (on Databricks the URI gets the tracking profile)."""
    return get_artifact_repository(
        add_databricks_profile_info_to_artifact_uri(artifact_uri, tracking_uri),
        tracking_uri=tracking_uri,
    )


def logged_model_id(model_uri: str) -> str | None:
    """The logged model id of a ``models:/<model id>`` URI (None for other URIs)."""
    match = re.fullmatch(r"models:/(m-[0-9a-f]+)", model_uri)
    return match.group(1) if match else None
