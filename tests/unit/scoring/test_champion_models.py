"""The score task's model cache: champions downloaded several at a time, on a real registry.

The registry is MLflow's own sqlite store with real artifacts (small hand-written MLflow
model folders, logged to runs and registered); the downloads are MLflow's own. Only
:func:`champion_models.cache` is wrapped, to count how many downloads run at once.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.entities.model_registry import ModelVersion

from demand_forecasting.models import registry as registry_module
from demand_forecasting.models.registry import (
    CHAMPION,
    REGISTRY_READ_THREADS,
    SegmentReadError,
    SegmentRegistry,
)
from demand_forecasting.platform.mlflow_setup import MlflowStore, configure_mlflow, local_store
from demand_forecasting.scoring import champion_models
from demand_forecasting.scoring.champion_models import COMPLETE_MARKER, champions

CATALOG, SCHEMA, PREFIX = "main", "demand_forecasting", "demand"
SEGMENTS = [f"seg_{i:02d}" for i in range(12)]
#: Registered, but its artifacts are no MLflow model (no MLmodel file).
BROKEN = "seg_broken"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _needs_old_numpy(segment: str) -> bool:
    """Every third segment's model pins a numpy this environment does not have."""
    return segment != BROKEN and int(segment[-2:]) % 3 == 0


def _champion_version(segment: str) -> int:
    """Every fourth segment's champion is its second version."""
    return 2 if segment != BROKEN and int(segment[-2:]) % 4 == 0 else 1


def _model_files(folder: Path, segment: str, mlmodel: bool = True) -> Path:
    folder.mkdir(parents=True)
    if mlmodel:
        (folder / "MLmodel").write_text(
            f"artifact_path: model\nflavors: {{}}\nsegment: {segment}\n"
        )
    pins = "numpy==0.0.1" if _needs_old_numpy(segment) else "numpy"
    (folder / "requirements.txt").write_text(f"{pins}\n")
    (folder / "python_env.yaml").write_text(f"python: {PYTHON}.0\n")
    (folder / "data").mkdir()
    (folder / "data" / "model.bin").write_bytes(segment.encode() * 500)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    """Each of :data:`SEGMENTS` with a champion (version 2 for every fourth, version 1 for
    the others), and :data:`BROKEN`'s champion without an MLmodel file."""
    scratch = Path(tmp_path_factory.mktemp("champions"))
    store = local_store(scratch / "mlflow")
    client = configure_mlflow(store)
    registry = SegmentRegistry(client, CATALOG, SCHEMA, PREFIX)
    experiment = client.create_experiment("champion-models", store.artifact_root)
    for segment in [*SEGMENTS, BROKEN]:
        name = registry.ensure_model(segment)
        for _ in range(_champion_version(segment)):
            run = client.create_run(experiment)
            files = _model_files(
                scratch / "files" / run.info.run_id, segment, mlmodel=segment != BROKEN
            )
            client.log_artifacts(run.info.run_id, str(files), "model")
            version: Any = client.create_model_version(
                name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
            )
        registry.set_alias(segment, CHAMPION, str(version.version))
    return store


@pytest.fixture
def registry(store: MlflowStore) -> Iterator[SegmentRegistry]:
    """The registry, with this process's MLflow pointed at it (downloads use that)."""
    yield SegmentRegistry(configure_mlflow(store), CATALOG, SCHEMA, PREFIX)


def _ctx(root: Path) -> Any:
    """What :func:`champions` uses of a run context: its volumes, under ``root``."""
    return SimpleNamespace(
        volume_path=lambda volume, *parts: str(root.joinpath("volumes", volume, *parts))
    )


def _contents(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _cache_of(found: dict[str, champion_models.ChampionModel], root: Path) -> dict[str, Any]:
    """The champions as plain values, folders relative to ``root``, with their files."""
    return {
        segment: (
            model.model_name,
            model.version,
            str(Path(model.folder).relative_to(root)),
            _contents(Path(model.folder)),
        )
        for segment, model in found.items()
    }


class _CountingCache:
    """:func:`champion_models.cache`, counting the downloads in flight in ``peak``; each
    takes 20 ms longer, so that downloads that run together overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0
        self._cache = champion_models.cache

    def __call__(self, model_uri: str, folder: Path) -> bool:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            time.sleep(0.02)
            return self._cache(model_uri, folder)
        finally:
            with self._lock:
                self._in_flight -= 1


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _CountingCache:
    counting = _CountingCache()
    monkeypatch.setattr(champion_models, "cache", counting)
    return counting


def test_pooled_downloads_equal_downloads_one_after_another(
    registry: SegmentRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counting: _CountingCache,
) -> None:
    versions = registry.segments_with(reversed(SEGMENTS), CHAMPION)

    pooled = champions(_ctx(tmp_path / "pooled"), registry, versions)
    assert 1 < counting.peak <= REGISTRY_READ_THREADS

    counting.peak = 0
    monkeypatch.setattr(registry_module, "REGISTRY_READ_THREADS", 1)
    sequential = champions(_ctx(tmp_path / "sequential"), registry, versions)
    assert counting.peak == 1

    assert list(pooled) == list(sequential) == SEGMENTS
    assert _cache_of(pooled, tmp_path / "pooled") == _cache_of(sequential, tmp_path / "sequential")
    assert {s: m.version for s, m in pooled.items()} == {
        s: str(_champion_version(s)) for s in SEGMENTS
    }
    model = pooled["seg_04"]
    assert model.folder == str(
        tmp_path / "pooled/volumes/checkpoints/model_cache/main.demand_forecasting.demand_seg_04/2"
    )
    assert (Path(model.folder) / COMPLETE_MARKER).read_text() == (
        "models:/main.demand_forecasting.demand_seg_04/2"
    )
    assert (Path(model.folder) / "data" / "model.bin").read_bytes() == b"seg_04" * 500


def test_an_interrupted_download_is_fetched_again_and_a_complete_one_kept(
    registry: SegmentRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    versions = registry.segments_with(SEGMENTS, CHAMPION)
    first = champions(_ctx(tmp_path), registry, versions)
    whole = _contents(Path(first["seg_03"].folder))
    # A run killed while seg_03 downloaded: some files, one of them cut short, no marker.
    interrupted = Path(first["seg_03"].folder)
    (interrupted / COMPLETE_MARKER).unlink()
    (interrupted / "MLmodel").write_text("artifact_")
    (interrupted / "data" / "model.bin").unlink()
    (interrupted / "partial.tmp").write_text("")
    # Killed before seg_07's folder had a file.
    empty = Path(first["seg_07"].folder)
    for path in sorted(empty.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    # A complete folder is never written again (this file would go with a new download).
    (Path(first["seg_01"].folder) / "kept").write_text("")

    with caplog.at_level(logging.INFO, logger=champion_models.__name__):
        again = champions(_ctx(tmp_path), registry, versions)

    assert again == first
    assert _contents(interrupted) == whole
    assert (empty / COMPLETE_MARKER).is_file() and (empty / "MLmodel").is_file()
    assert (Path(first["seg_01"].folder) / "kept").is_file()
    assert "2 champion model(s) downloaded into the model cache" in caplog.text
    assert "(10 already there)" in caplog.text


def test_a_failed_download_names_its_segment(registry: SegmentRegistry, tmp_path: Path) -> None:
    versions = registry.segments_with([*SEGMENTS, BROKEN], CHAMPION)

    for threads in (REGISTRY_READ_THREADS, 1):
        root = tmp_path / str(threads)
        with pytest.raises(
            SegmentReadError,
            match=rf"segment {BROKEN}: RuntimeError: models:/main.demand_forecasting.demand_"
            rf"{BROKEN}/1 downloaded to .* without an MLmodel file",
        ) as error:
            champions(_ctx(root), registry, versions)
        assert error.value.segment == BROKEN
        assert isinstance(error.value.__cause__, RuntimeError)
        cache = root / "volumes/checkpoints/model_cache"
        assert not (cache / f"main.demand_forecasting.demand_{BROKEN}/1" / COMPLETE_MARKER).exists()
    # A version that is not in the registry.
    gone = {"seg_01": ModelVersion(registry.name("seg_01"), "9", 0)}
    with pytest.raises(SegmentReadError, match="segment seg_01: ") as error:
        champions(_ctx(tmp_path / "gone"), registry, gone)
    assert error.value.segment == "seg_01"


def test_each_distinct_environment_is_checked_once(
    registry: SegmentRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    versions = registry.segments_with(SEGMENTS, CHAMPION)
    checked: list[str] = []
    check = champion_models.environment_problems

    def counted(folder: Path) -> list[str]:
        checked.append(folder.parent.name)
        return check(folder)

    monkeypatch.setattr(champion_models, "environment_problems", counted)

    with caplog.at_level(logging.WARNING, logger=champion_models.__name__):
        champions(_ctx(tmp_path), registry, versions)

    # The first champion of each pair of files, in segment order.
    assert checked == [
        "main.demand_forecasting.demand_seg_00",
        "main.demand_forecasting.demand_seg_01",
    ]
    numpy = importlib.metadata.version("numpy")
    assert [r.getMessage() for r in caplog.records] == [
        f"champion main.demand_forecasting.demand_{s}/{versions[s].version} needs another "
        f"environment than this one (numpy==0.0.1 is installed as {numpy}): it may load or "
        "forecast differently than when it was validated"
        for s in SEGMENTS
        if _needs_old_numpy(s)
    ]


@pytest.mark.parametrize(
    ("segments", "problem"),
    [
        (["Food", "food"], "segments Food and food would share the model cache folder"),
        (["a/b"], "segment a/b: model 'main.demand_forecasting.demand_a/b' version '1' cannot"),
    ],
)
def test_no_two_segments_share_a_cache_folder(
    registry: SegmentRegistry, tmp_path: Path, segments: list[str], problem: str
) -> None:
    versions = {s: ModelVersion(registry.name(s), "1", 0) for s in segments}

    with pytest.raises(ValueError, match=problem):
        champions(_ctx(tmp_path), registry, versions)
    assert not (tmp_path / "volumes").exists()


def test_no_champion_downloads_nothing(registry: SegmentRegistry, tmp_path: Path) -> None:
    assert champions(_ctx(tmp_path), registry, {}) == {}
    assert not (tmp_path / "volumes").exists()
