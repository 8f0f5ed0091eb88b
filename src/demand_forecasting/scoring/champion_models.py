"""Champion models where Spark's Python workers can load them.

The driver resolves each segment's ``champion`` alias to a fixed version, so that every
group of one scoring run uses the same version even if a deploy moves the alias meanwhile,
and downloads its artifacts once into a model cache in the checkpoints volume:
``<checkpoints volume>/model_cache/<model>/<version>``, several segments at a time. A
version never changes, so later runs reuse the folder. The volume is a local folder of the
state directory on a laptop and a Unity Catalog volume on Databricks, which the executors of
classic and serverless compute read as files, so workers load the model from the same path
everywhere.

The driver also checks each champion's environment against its own
(:func:`environment_problems`: the model's pinned ``requirements.txt`` and Python version),
once per distinct pair of files, and logs what differs: the driver and the workers run the
same libraries (one virtualenv locally, the cluster's libraries on Databricks). The workers
then load with MLflow's own copy of these checks off (``suppress_warnings``): MLflow ran them
on every load, its first run in a worker scans every installed distribution (1-2 s of CPU per
worker and scoring run for the 46 champions on the 2-core VM), and its warnings went to the
workers' stderr.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from packaging.requirements import InvalidRequirement, Requirement

from demand_forecasting import names
from demand_forecasting.models.fallback import is_fallback
from demand_forecasting.models.registry import SegmentRegistry, read_each_segment
from demand_forecasting.platform.context import RunContext

log = logging.getLogger(__name__)

MODEL_CACHE = "model_cache"
#: Written last: a folder without it is an interrupted download and is fetched again.
COMPLETE_MARKER = "_COMPLETE"
#: Files of an MLflow model folder naming the environment it needs.
REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"


@dataclass(frozen=True)
class ChampionModel:
    """A segment's champion version and the folder workers load it from."""

    segment: str
    model_name: str
    version: str
    folder: str
    #: The seasonal-naive fallback (the segment's candidate was refused, it had no champion).
    fallback: bool = False

    @property
    def model_id(self) -> str:
        """``<model name>/<version>``: the model identity of a forecast row."""
        return f"{self.model_name}/{self.version}"


def champions(
    ctx: RunContext, registry: SegmentRegistry, versions: Mapping[str, ModelVersion]
) -> dict[str, ChampionModel]:
    """The champion ``versions`` (``{segment: version}``, as
    ``registry.segments_with(segments, CHAMPION)`` loads them), in the model cache, in
    segment order.

    The downloads, and the reads of each folder's environment files, run
    :data:`~demand_forecasting.models.registry.REGISTRY_READ_THREADS` at a time
    (:func:`~demand_forecasting.models.registry.read_each_segment`): on Databricks each is a
    registry call and a download from cloud storage (~1 s or more), and the first run after a
    deployment or a full retrain fetches every champion. Each segment writes only its own
    folder (:func:`cache_folders`). The environment check runs afterwards in this thread.

    Raises:
        SegmentReadError: a champion could not be fetched (of several, the first in segment
            order). Downloads under way finish first, those not started yet are cancelled;
            the folders completed stay in the cache.
    """
    folders = cache_folders(ctx, registry, versions)

    def fetch(segment: str) -> tuple[bool, str]:
        uri = f"models:/{registry.name(segment)}/{versions[segment].version}"
        return cache(uri, folders[segment]), environment_of(folders[segment])

    cached = read_each_segment(folders, fetch)
    found = {}
    problems_by_environment: dict[str, list[str]] = {}
    for segment, (_, environment) in cached.items():
        name, version, folder = registry.name(segment), versions[segment], folders[segment]
        if environment not in problems_by_environment:
            problems_by_environment[environment] = environment_problems(folder)
        if problems_by_environment[environment]:
            log.warning(
                "champion %s/%s needs another environment than this one (%s): it may load or "
                "forecast differently than when it was validated",
                name,
                version.version,
                "; ".join(problems_by_environment[environment]),
            )
        found[segment] = ChampionModel(
            segment, name, str(version.version), str(folder), fallback=is_fallback(version)
        )
    fetched = sum(fetched for fetched, _ in cached.values())
    if fetched:
        log.info(
            "%d champion model(s) downloaded into the model cache %s (%d already there)",
            fetched,
            ctx.volume_path(names.CHECKPOINT_VOLUME, MODEL_CACHE),
            len(found) - fetched,
        )
    return found


def cache_folders(
    ctx: RunContext, registry: SegmentRegistry, versions: Mapping[str, ModelVersion]
) -> dict[str, Path]:
    """``{segment: <model cache>/<model name>/<version>}``, in segment order.

    The downloads write these folders from several threads, so no two may be one folder,
    nor one inside another: the model name and the version are one path component each, and
    no two segments' pairs are equal, letters of either case being taken as the same (a
    laptop's file system may not tell them apart). Segment names are slugs
    (``data.config.slugify``), so the project's own never collide.

    Raises:
        ValueError: a segment's folder would not be its own.
    """
    folders: dict[str, Path] = {}
    owners: dict[tuple[str, str], str] = {}
    for segment, version in sorted(versions.items()):
        name, number = registry.name(segment), str(version.version)
        if any(part in ("", ".", "..") or "/" in part or "\\" in part for part in (name, number)):
            raise ValueError(
                f"segment {segment}: model {name!r} version {number!r} cannot name a folder "
                "of the model cache"
            )
        key = (name.casefold(), number.casefold())
        if key in owners:
            raise ValueError(
                f"segments {owners[key]} and {segment} would share the model cache folder "
                f"{name}/{number}"
            )
        owners[key] = segment
        folders[segment] = Path(ctx.volume_path(names.CHECKPOINT_VOLUME, MODEL_CACHE, name, number))
    return folders


def cache(model_uri: str, folder: Path) -> bool:
    """Download ``model_uri`` into ``folder`` unless a complete copy is there; True if fetched."""
    if (folder / COMPLETE_MARKER).is_file():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder))
    if not (folder / "MLmodel").is_file():
        raise RuntimeError(
            f"{model_uri} downloaded to {folder} without an MLmodel file: "
            "not an MLflow model; check the registered version's source"
        )
    (folder / COMPLETE_MARKER).write_text(model_uri)
    log.debug("cached %s in %s", model_uri, folder)
    return True


def environment_of(folder: Path) -> str:
    """The model folder's requirements and Python environment files, as one string."""
    return "\0".join(
        (folder / f).read_text() if (folder / f).is_file() else ""
        for f in (REQUIREMENTS_FILE, PYTHON_ENV_FILE)
    )


def environment_problems(folder: Path) -> list[str]:
    """What this process's environment lacks of the model's in ``folder``: each requirement
    of ``requirements.txt`` the installed distribution does not satisfy, and a Python
    major.minor version other than ``python_env.yaml``'s. Empty when it matches."""
    problems = []
    path = folder / REQUIREMENTS_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in (raw.split("#")[0].strip() for raw in lines):
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            problems.append(f"unreadable requirement {line!r}")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{line} is not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{line} is installed as {installed}")
    path = folder / PYTHON_ENV_FILE
    match = re.search(r"^python:\s*(\d+\.\d+)", path.read_text(), re.M) if path.is_file() else None
    running = ".".join(platform.python_version_tuple()[:2])
    if match and match.group(1) != running:
        problems.append(f"Python {match.group(1)} is {running} here")
    return problems
