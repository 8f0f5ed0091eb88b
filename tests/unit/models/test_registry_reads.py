"""Per-segment registry reads several at a time (``read_each_segment``), on a real registry.

The registry is MLflow's own sqlite store, as the local runner uses it, through the real
client; :class:`registry_support.OverlapCountingClient` only counts how many of its reads
are in flight at once.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from demand_forecasting.models import registry as registry_module
from demand_forecasting.models.fallback import FALLBACK_FOR_TAG, FALLBACK_TAG, SEASONAL_NAIVE
from demand_forecasting.models.registry import (
    CHAMPION,
    REGISTRY_READ_THREADS,
    VALIDATION_STATUS,
    SegmentReadError,
    SegmentRegistry,
    read_each_segment,
)
from demand_forecasting.models.validate import plan_contests
from demand_forecasting.monitoring.champions import find_champions, recently_refused
from demand_forecasting.platform.mlflow_setup import configure_mlflow, local_store
from registry_support import OverlapCountingClient

CATALOG, SCHEMA, PREFIX = "dev", "demand_forecasting", "demand"
#: Not sorted: results come in the order asked for.
SEGMENTS = [f"seg_{i:02d}" for i in (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6)]
RUN_MONTH = date(2016, 1, 1)


def _register(client: MlflowClient, registry: SegmentRegistry, segment: str, **tags: str) -> str:
    name = registry.ensure_model(segment)
    experiment = client.get_experiment_by_name("registry-reads")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("registry-reads")
    )
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "horizon", tags.pop("horizon", "12"))
    client.log_param(run.info.run_id, "recipe", '{"horizon": 12}')
    version: Any = client.create_model_version(
        name, source=run.info.artifact_uri, run_id=run.info.run_id, tags=tags
    )
    return str(version.version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> SegmentRegistry:
    """Twelve segments, in four kinds: no model; a champion; a champion and a newer
    refused candidate; a seasonal-naive fallback champion standing in for a refused one."""
    store = local_store(Path(tmp_path_factory.mktemp("registry")) / "mlflow")
    configure_mlflow(store)
    client = OverlapCountingClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    registry = SegmentRegistry(client, CATALOG, SCHEMA, PREFIX)
    for segment in sorted(SEGMENTS):
        kind = int(segment[-2:]) % 4
        if kind == 0:
            continue
        horizon = str(6 + int(segment[-2:]))
        champion = _register(
            client,
            registry,
            segment,
            horizon=horizon,
            training_table="dev.demand_forecasting.features",
            training_table_version="3",
            trained_until="2015-11-01",
        )
        if kind == 3:
            champion = _register(
                client,
                registry,
                segment,
                **{FALLBACK_TAG: SEASONAL_NAIVE, FALLBACK_FOR_TAG: champion},
            )
        registry.set_alias(segment, CHAMPION, champion)
        if kind == 2:
            _register(
                client,
                registry,
                segment,
                **{VALIDATION_STATUS: "refused", "trained_until": "2016-01-01"},
            )
    return registry


def _client(registry: SegmentRegistry) -> OverlapCountingClient:
    assert isinstance(registry.client, OverlapCountingClient)
    registry.client.peak = 0
    return registry.client


def _everything_of(registry: SegmentRegistry, segment: str) -> tuple[Any, ...]:
    """What check_drift reads of a segment: its champion, that champion's training run and
    its versions, as plain values."""
    champion = registry.alias(segment, CHAMPION)
    run = registry.client.get_run(champion.run_id) if champion is not None else None
    return (
        (str(champion.version), dict(champion.tags)) if champion is not None else None,
        dict(run.data.params) if run is not None else None,
        [(str(v.version), dict(v.tags)) for v in registry.versions(segment)],
    )


def test_pooled_reads_equal_reads_one_after_another(registry: SegmentRegistry) -> None:
    client = _client(registry)
    one_by_one = {segment: _everything_of(registry, segment) for segment in SEGMENTS}
    assert client.peak == 1

    pooled = read_each_segment(SEGMENTS, lambda segment: _everything_of(registry, segment))
    sequential = read_each_segment(
        SEGMENTS, lambda segment: _everything_of(registry, segment), threads=1
    )

    assert list(pooled) == SEGMENTS
    assert pooled == sequential == one_by_one
    assert 1 < client.peak <= REGISTRY_READ_THREADS


def test_check_drift_reads_segments_several_at_a_time(registry: SegmentRegistry) -> None:
    client = _client(registry)

    champions = find_champions(client, CATALOG, SCHEMA, PREFIX, SEGMENTS)

    assert list(champions) == sorted(s for s in SEGMENTS if int(s[-2:]) % 4)
    assert {s: (c.horizon, c.fallback) for s, c in champions.items()} == {
        s: (12, True) if int(s[-2:]) % 4 == 3 else (6 + int(s[-2:]), False) for s in champions
    }
    assert all(c.training_version == 3 or c.fallback for c in champions.values())
    assert client.peak > 1

    client.peak = 0
    refused = recently_refused(client, CATALOG, SCHEMA, PREFIX, SEGMENTS, RUN_MONTH, 1)

    assert {s: str(r) for s, r in refused.items()} == {
        s: "v2 refused, trained until 2016-01" for s in sorted(SEGMENTS) if int(s[-2:]) % 4 == 2
    }
    assert client.peak > 1


def test_segments_with_reads_several_at_a_time(registry: SegmentRegistry) -> None:
    client = _client(registry)

    found = registry.segments_with(SEGMENTS, CHAMPION)

    assert list(found) == [s for s in SEGMENTS if int(s[-2:]) % 4]
    assert client.peak > 1


def test_validation_plans_its_contests_several_at_a_time(registry: SegmentRegistry) -> None:
    client = _client(registry)
    ctx: Any = SimpleNamespace(mlflow=client)

    contests, skipped = plan_contests(ctx, registry, SEGMENTS, None)

    # Only the refused candidates are newer than their champion; the order is the segments'.
    assert [(c.segment, c.candidate_version, c.champion_version) for c in contests] == [
        (s, "2", "1") for s in SEGMENTS if int(s[-2:]) % 4 == 2
    ]
    assert skipped == {
        s: "no registered model"
        if int(s[-2:]) % 4 == 0
        else "version 1 is already the champion"
        if int(s[-2:]) % 4 == 1
        else "version 1 was refused; its seasonal-naive fallback v2 is the champion"
        for s in SEGMENTS
        if int(s[-2:]) % 4 != 2
    }
    assert client.peak > 1


def test_a_failing_read_names_its_segment(registry: SegmentRegistry) -> None:
    asked = ["seg_01", "seg_00", "seg_02"]  # seg_00 has no model

    for threads in (REGISTRY_READ_THREADS, 1):
        with pytest.raises(SegmentReadError, match="segment seg_00: LookupError: model ") as error:
            read_each_segment(asked, lambda s: registry.version(s, "1"), threads=threads)
        assert error.value.segment == "seg_00"
        assert isinstance(error.value.__cause__, LookupError)


def test_of_several_failures_the_first_segment_in_order_is_named() -> None:
    def read(segment: str) -> str:
        if segment == "a":
            time.sleep(0.2)  # fails after "c" has failed
            raise KeyError("a is gone")
        if segment == "c":
            raise ValueError("c is broken")
        return segment

    with pytest.raises(SegmentReadError, match=r"segment a: KeyError: 'a is gone'"):
        read_each_segment(["a", "b", "c"], read)


def test_a_validation_with_a_missing_candidate_names_the_segment(
    registry: SegmentRegistry,
) -> None:
    ctx: Any = SimpleNamespace(mlflow=registry.client)

    with pytest.raises(SegmentReadError, match=r"segment seg_05: LookupError: .* no version 9"):
        plan_contests(ctx, registry, SEGMENTS, {"seg_01": "1", "seg_05": "9"})


def test_the_pool_size_is_read_at_each_call(
    registry: SegmentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(registry)
    monkeypatch.setattr(registry_module, "REGISTRY_READ_THREADS", 1)

    champions = find_champions(client, CATALOG, SCHEMA, PREFIX, SEGMENTS)

    assert len(champions) == 9
    assert client.peak == 1
