"""The segment registry against search results shaped as Unity Catalog returns them.

Unity Catalog's registry store (``mlflow.store._unity_catalog.registry.rest_store``) answers
``search_model_versions`` with ``ModelVersionSearch`` objects that carry no tags and no aliases
(their ``tags`` is a method that raises), refuses ``order_by``, and filters only on
``name = '...'`` or ``run_id = '...'``. The local sqlite registry returns whole versions, so the
local runner never meets this. The client below is the real sqlite registry whose searches go
through MLflow's own Unity Catalog conversion (``model_version_search_from_uc_proto``), so the
results are the objects a Databricks job gets; there is no workspace here to ask.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities.model_registry import ModelVersion
from mlflow.entities.model_registry.model_version_search import ModelVersionSearch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_uc_registry_messages_pb2 import ModelVersion as ProtoModelVersion
from mlflow.protos.databricks_uc_registry_messages_pb2 import ModelVersionStatus
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import MlflowClient
from mlflow.utils._unity_catalog_utils import model_version_search_from_uc_proto

from demand_forecasting.models.fallback import (
    FALLBACK_FOR_TAG,
    FALLBACK_TAG,
    SEASONAL_NAIVE,
    is_fallback,
    newest_trained_version,
    trained_versions,
)
from demand_forecasting.models.lifecycle import retag_stale_versions
from demand_forecasting.models.registry import (
    DEPLOYMENT_STATUS,
    LIFECYCLE_RULES_TAG,
    PREVIOUS_CHAMPION,
    RETIRED,
    TAG_VALUE_MAX,
    VALIDATION_STATUS,
    SegmentRegistry,
)
from demand_forecasting.models.tracking import compact_features
from demand_forecasting.monitoring.champions import recently_refused
from demand_forecasting.platform.mlflow_setup import configure_mlflow, local_store

SEGMENT = "nsw_food"


class UnityCatalogSearchClient(MlflowClient):
    """The local sqlite registry, searched as Unity Catalog searches (see the module doc);
    ``versions_read`` counts the versions read one by one (``get_model_version``)."""

    versions_read = 0

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        self.versions_read += 1
        return super().get_model_version(name, version)

    def search_model_versions(  # type: ignore[override]
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        if order_by is not None:
            raise MlflowException(
                "Argument 'order_by' is unsupported for models in the Unity Catalog."
            )
        found = super().search_model_versions(filter_string, max_results, None, page_token)
        return PagedList([_as_unity_catalog_search_hit(v) for v in found], found.token)


def _as_unity_catalog_search_hit(version: ModelVersion) -> ModelVersionSearch:
    proto = ProtoModelVersion(
        name=version.name,
        version=str(version.version),
        creation_timestamp=version.creation_timestamp,
        last_updated_timestamp=version.last_updated_timestamp or 0,
        description=version.description or "",
        user_id=version.user_id or "",
        source=version.source or "",
        run_id=version.run_id or "",
        status=ModelVersionStatus.Value("READY"),
    )
    return model_version_search_from_uc_proto(proto)


@pytest.fixture
def client(tmp_path: Path) -> UnityCatalogSearchClient:
    store = local_store(tmp_path / "mlflow")
    configure_mlflow(store)
    return UnityCatalogSearchClient(
        tracking_uri=store.tracking_uri, registry_uri=store.registry_uri
    )


def _register(reg: SegmentRegistry, tmp_path: Path, tags: dict[str, str]) -> str:
    name = reg.ensure_model(SEGMENT)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    version: Any = reg.client.create_model_version(name, source=str(source), tags=tags)
    return str(version.version)


def test_the_fake_answers_searches_as_unity_catalog_does(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    _register(reg, tmp_path, {"segment": SEGMENT})
    hit = next(iter(client.search_model_versions(f"name = '{reg.name(SEGMENT)}'")))
    assert isinstance(hit, ModelVersionSearch)
    # What the registry code met before: a bound method, not a dict of tags.
    with pytest.raises(AttributeError):
        (hit.tags or {}).get("segment")  # type: ignore[attr-defined]


def test_versions_carry_their_tags_newest_first(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    first = _register(reg, tmp_path, {"training_identity": "a"})
    second = _register(reg, tmp_path, {"training_identity": "b"})

    versions = reg.versions(SEGMENT)

    assert [str(v.version) for v in versions] == [second, first]
    assert [v.tags["training_identity"] for v in versions] == ["b", "a"]
    assert not any(isinstance(v, ModelVersionSearch) for v in versions)


def test_find_by_tag_reads_tags_that_search_leaves_out(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    older = _register(reg, tmp_path, {"training_identity": "same-data"})
    _register(reg, tmp_path, {"training_identity": "other-data"})

    found = reg.find_by_tag(SEGMENT, "training_identity", "same-data")

    assert found is not None and str(found.version) == older
    assert reg.find_by_tag(SEGMENT, "training_identity", "never-trained") is None
    assert reg.find_by_tag("no_such_segment", "training_identity", "same-data") is None


def test_fallbacks_are_told_apart_and_the_newest_refusal_waits(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    refused = _register(
        reg, tmp_path, {VALIDATION_STATUS: "refused", "trained_until": "2015-11-01"}
    )
    fallback = _register(reg, tmp_path, {FALLBACK_TAG: SEASONAL_NAIVE, FALLBACK_FOR_TAG: refused})

    trained = trained_versions(reg, SEGMENT)
    assert [str(v.version) for v in trained] == [refused]
    assert is_fallback(reg.version(SEGMENT, fallback))
    assert str(reg.find_by_tag(SEGMENT, FALLBACK_FOR_TAG, refused).version) == fallback  # type: ignore[union-attr]

    waiting = recently_refused(
        client, "prod", "demand_forecasting", "demand", [SEGMENT], date(2015, 12, 1), 3
    )
    assert {s: str(r) for s, r in waiting.items()} == {
        SEGMENT: f"v{refused} refused, trained until 2015-11"
    }


def test_the_feature_list_tag_folds_numbered_runs_and_fits_a_tag_value() -> None:
    lags = [f"rel_lag_{i:02d}" for i in range(24)]
    assert compact_features([*lags, "horizon", "month"]) == "rel_lag_00..rel_lag_23,horizon,month"

    promotions = [f"promotion_depth_{name}_store_cluster" for name in "abcdefghijklmnop"]
    text = compact_features([*promotions, *lags])

    assert len(text) <= TAG_VALUE_MAX
    kept = text.split(",")[:-1]
    assert kept == promotions[: len(kept)]
    # The cut names how many features the tag leaves out (24 lags fold into one item).
    assert text.endswith(f",...(+{len(promotions) - len(kept) + len(lags)} more)")


def test_the_newest_trained_version_is_found_without_reading_older_ones(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    for month in range(1, 9):  # eight months of candidates, each one refused
        refused = _register(
            reg, tmp_path, {VALIDATION_STATUS: "refused", "trained_until": f"2015-{month:02d}-01"}
        )
    _register(reg, tmp_path, {FALLBACK_TAG: SEASONAL_NAIVE, FALLBACK_FOR_TAG: refused})
    client.versions_read = 0

    newest = newest_trained_version(reg, SEGMENT)
    waiting = recently_refused(
        client, "prod", "demand_forecasting", "demand", [SEGMENT], date(2015, 9, 1), 3
    )

    assert newest is not None and str(newest.version) == refused
    assert {s: str(r) for s, r in waiting.items()} == {
        SEGMENT: f"v{refused} refused, trained until 2015-08"
    }
    # The fallback and the newest refused candidate, each time: not all nine versions.
    assert client.versions_read == 4


def test_stale_lifecycle_tags_cost_one_version_read_each_once(
    client: UnityCatalogSearchClient, tmp_path: Path
) -> None:
    """Twelve months of versions left by an older release: former champions still tagged
    previous_champion. The first deploy's pass reads each version once (Unity Catalog's
    search returns no tags) plus each stale one again before retagging it; later deploys
    read only the registered model's record."""
    reg = SegmentRegistry(client, "prod", "demand_forecasting", "demand")
    for _ in range(12):
        _register(reg, tmp_path, {DEPLOYMENT_STATUS: PREVIOUS_CHAMPION})
    reg.set_alias(SEGMENT, PREVIOUS_CHAMPION, "12")
    client.delete_registered_model_tag(reg.name(SEGMENT), LIFECYCLE_RULES_TAG)
    client.versions_read = 0

    retagged = retag_stale_versions(reg, [SEGMENT])

    assert retagged == {SEGMENT: [f"v{v} {PREVIOUS_CHAMPION} -> {RETIRED}" for v in range(1, 12)]}
    assert client.versions_read == 12 + 11
    assert (reg.version(SEGMENT, "12").tags or {})[DEPLOYMENT_STATUS] == PREVIOUS_CHAMPION
    client.versions_read = 0
    assert retag_stale_versions(reg, [SEGMENT]) == {}
    assert client.versions_read == 0
