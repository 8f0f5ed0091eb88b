"""``land`` writes plan files for a synthetic dataset with planned columns (no Spark)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from demand_forecasting.data.config import load_dataset_config, parse_month
from demand_forecasting.data.landing import land
from demand_forecasting.data.plan_layout import (
    plan_file_month,
    plan_landing_columns,
    plans_folder,
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_each_landed_month_gets_the_plan_of_the_next_horizon_months(tmp_path: Path) -> None:
    config = load_dataset_config("synthetic")
    folder = tmp_path / "landing" / "synthetic"
    report = land(config, folder, until=parse_month("1982-06"), series=3, horizon=4)
    plans = plans_folder(folder)
    assert plans == tmp_path / "landing" / "plans" / "synthetic"
    assert [p.name for p in report.plans] == [
        "synthetic_plan_1982-04.csv",
        "synthetic_plan_1982-05.csv",
        "synthetic_plan_1982-06.csv",
    ]
    assert "3 plan file(s) 1982-04 .. 1982-06" in report.summary()
    issued = _rows(plans / "synthetic_plan_1982-04.csv")
    assert list(issued[0]) == list(plan_landing_columns(config))
    assert len(issued) == 3 * 4
    assert sorted({r["Period"] for r in issued}) == ["1982-05", "1982-06", "1982-07", "1982-08"]
    # The plan is what the sales files of those months carry (the generator is deterministic).
    later = land(config, folder, until=parse_month("1982-08"), series=3, horizon=4)
    assert [p.name for p in later.plans] == [
        "synthetic_plan_1982-07.csv",
        "synthetic_plan_1982-08.csv",
    ]
    for month in ("1982-05", "1982-08"):
        sold = {
            (r["Region"], r["Product"]): (r["Price"], r["Promo"])
            for r in _rows(folder / f"synthetic_{month}.csv")
        }
        planned = {
            (r["Region"], r["Product"]): (r["Price"], r["Promo"])
            for r in issued
            if r["Period"] == month
        }
        assert planned == sold


def test_plans_are_shorter_near_the_end_and_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "short.yml"
    path.write_text(
        "extends: synthetic\nname: short\nfile_prefix: short\n"
        "source: {synthetic: {last_month: 1982-07}}\n",
        encoding="utf-8",
    )
    config = load_dataset_config(str(path))
    folder = tmp_path / "landing" / "short"
    land(config, folder, until=parse_month("1982-07"), series=2)
    plans = plans_folder(folder)
    months = {p.name: len(_rows(p)) for p in sorted(plans.iterdir())}
    # Twelve months ahead reach past the source's last month: 3, 2, 1 month(s), then none.
    assert months == {
        "short_plan_1982-04.csv": 2 * 3,
        "short_plan_1982-05.csv": 2 * 2,
        "short_plan_1982-06.csv": 2 * 1,
    }
    (plans / "short_plan_1982-05.csv").write_text("kept\n", encoding="utf-8")
    (plans / "short_plan_1982-04.csv").rename(plans / "short_plan_1982-04_correction.csv")
    assert land(config, folder, until=parse_month("1982-07"), series=2).plans == ()
    assert (plans / "short_plan_1982-05.csv").read_text(encoding="utf-8") == "kept\n"
    assert not (plans / "short_plan_1982-04.csv").exists()


@pytest.mark.parametrize("dataset", ["aus_retail_small", "pbs"])
def test_datasets_without_planned_columns_land_no_plans(tmp_path: Path, dataset: str) -> None:
    config = load_dataset_config(dataset)
    folder = tmp_path / "landing" / config.name
    first = "1982-04" if dataset == "aus_retail_small" else "1991-07"
    report = land(config, folder, until=parse_month(first))
    assert report.written and report.plans == ()
    assert not (tmp_path / "landing" / "plans").exists()


def test_plan_file_names() -> None:
    config = load_dataset_config("synthetic")
    assert plan_file_month(config, "synthetic_plan_2016-01.csv") == parse_month("2016-01")
    assert plan_file_month(config, "synthetic_plan_2016-01_fix.csv") == parse_month("2016-01")
    assert plan_file_month(config, "synthetic_2016-01.csv") is None
    assert plan_file_month(config, "synthetic_plan_2016-13.csv") is None
