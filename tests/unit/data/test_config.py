"""Dataset configs: the shipped ones load and describe their data; broken ones fail by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from demand_forecasting.data.config import (
    DatasetConfigError,
    available_datasets,
    load_dataset_config,
    month_strftime,
    parse_month,
    slugify,
)


def test_shipped_configs_load() -> None:
    assert {"aus_retail", "aus_retail_small", "synthetic"} <= set(available_datasets())
    for name in available_datasets():
        assert load_dataset_config(name).name == name


def test_aus_retail_contract() -> None:
    config = load_dataset_config("aus_retail")
    assert config.landing_columns == ("State", "Industry", "Series ID", "Month", "Turnover")
    assert config.canonical_columns == ("state", "industry", "series_id", "month", "turnover")
    assert config.series_keys == ("state", "industry")
    assert config.series_id == "series_id"
    assert (config.month_column, config.month_format, config.target) == (
        "month",
        "yyyy-MM-dd",
        "turnover",
    )
    assert config.segment_keys == ("state", "industry_group")
    # 20 industries in 6 groups; every industry maps to exactly one group.
    group_of = config.groups[0].group_of()
    assert len(group_of) == 20 and len(set(group_of.values())) == 6
    assert group_of["Food retailing"] == "Food retailing"  # an aggregate is its own group
    assert config.required_columns == ("state", "industry", "series_id", "month", "turnover")


def test_segments_are_readable_model_name_safe_strings() -> None:
    config = load_dataset_config("aus_retail")
    segments = config.known_segments()
    assert len(segments) == 8 * 6
    assert all(re.fullmatch(r"[a-z0-9_]+", s) for s in segments)
    value = config.segment_of({"state": "New South Wales", "industry": "Liquor retailing"})
    assert value == "new_south_wales__food_retailing"
    assert value in segments


def test_small_dataset_extends_the_full_one() -> None:
    full, small = load_dataset_config("aus_retail"), load_dataset_config("aus_retail_small")
    assert small.rename == full.rename and small.groups == full.groups
    assert small.file_prefix == "aus_retail_small"
    assert small.source is not None and full.source is not None
    assert small.source.include == {"State": ("Tasmania",)}  # type: ignore[union-attr]
    assert small.source.resource == full.source.resource  # type: ignore[union-attr]


def test_a_config_file_path_works_and_may_extend_a_shipped_config(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text("extends: aus_retail\nname: mine\nfile_prefix: mine\n", encoding="utf-8")
    config = load_dataset_config(str(path))
    assert config.name == "mine" and config.series_keys == ("state", "industry")


def test_synthetic_has_exogenous_columns_and_no_id_column() -> None:
    config = load_dataset_config("synthetic")
    assert config.exogenous == ("price", "promo")
    assert config.planned == ("price", "promo")
    assert load_dataset_config("pbs").planned == ()  # Cost is not known ahead
    assert config.series_id is None
    assert config.segment_keys == ("region", "category")
    assert len(config.known_segments()) == 4 * 8


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rename: {State: State}", "not snake_case"),
        ("rename: {State: y}", "reserved"),
        ("target: sales", "target: 'sales' is not a canonical name.*right-hand side"),
        ("series_keys: [state, Industry]", "series_keys: 'Industry' is not a canonical name"),
        ("month: {column: Month, format: yyyy-MM-dd}", "month.column: 'Month' is not a canon"),
        ("month: {column: month, format: dd.MM}", "not a month pattern"),
        ("month: {column: month, format: yyyy MMMMM}", r"one month field \(MM a number, MMM"),
        ("month: {column: month, format: MM yyyy MMM}", r"one month field"),
        ("segment: {keys: [state, industry]}", "known values of segment key .industry."),
        ("planned: [turnover]", r"planned: 'turnover' is not in `exogenous` \(empty\)"),
        ("planned: turnover", "`planned` must be a list"),
        ("exogeneous: [turnover]", r"unknown key\(s\) \['exogeneous'\]; the keys are .*exogenous"),
        (
            "segment: {known_value: {state: [x]}}",
            r"`segment` has unknown key\(s\) \['known_value'\]",
        ),
        ("series_keys: state", "`series_keys` must be a list such as .a, b., not 'state'"),
        ("rename: [State, Month]", "`rename` must be a mapping"),
    ],
)
def test_broken_configs_fail_naming_the_field(tmp_path: Path, override: str, message: str) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(f"extends: aus_retail\nname: broken\n{override}\n", encoding="utf-8")
    with pytest.raises(DatasetConfigError, match=message):
        load_dataset_config(str(path))


def test_a_missing_required_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(
        "name: mine\nrename: {Shop: shop, Period: period, Units: units}\n"
        "series_keys: [shop]\nmonth: {column: period}\ntarget: units\n"
        "segment: {keys: [shop], known_values: {shop: [a]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetConfigError, match=r"mine.yml': `month.format` is missing"):
        load_dataset_config(str(path))


def test_unknown_dataset_lists_the_shipped_ones() -> None:
    with pytest.raises(DatasetConfigError, match="aus_retail, aus_retail_small"):
        load_dataset_config("nope")


def test_helpers() -> None:
    assert slugify(" Cafes, restaurants & takeaway ") == "cafes_restaurants_takeaway"
    assert month_strftime("yyyy-MM-dd") == "%Y-%m-%d"
    assert month_strftime("yyyy MMM") == "%Y %b" and month_strftime("MMMM yyyy") == "%B %Y"
    assert parse_month("2015-12").isoformat() == "2015-12-01"
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2015-13")


def test_planned_columns_are_exogenous_columns(tmp_path: Path) -> None:
    assert load_dataset_config("synthetic").planned == ("price", "promo")
    assert load_dataset_config("aus_retail").planned == ()
    path = tmp_path / "planned.yml"
    path.write_text("extends: synthetic\nname: planned\nplanned: [price, units]\n", "utf-8")
    with pytest.raises(DatasetConfigError, match=r"planned: 'units' is not in `exogenous`"):
        load_dataset_config(str(path))
    path.write_text("extends: synthetic\nname: planned\nplanned: price\n", "utf-8")
    with pytest.raises(DatasetConfigError, match="`planned` must be a list"):
        load_dataset_config(str(path))
