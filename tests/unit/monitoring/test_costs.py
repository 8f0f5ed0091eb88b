"""Cost per model: each task's priced time split over the segment models (pure)."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from demand_forecasting.monitoring import costs
from demand_forecasting.monitoring.report import cost_format, cost_section

SERIES = {"alpha": 3, "beta": 1}


def _telemetry() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("ingest", 36.0, None),
            ("train", 72.0, {"alpha": 1.0, "beta": 3.0}),
            ("train", 18.0, None),  # a failed first attempt, billed too
            ("score", 7.2, {"alpha": 2.0, "gamma": 2.0}),  # gamma scored, then dropped
            ("monitor", 3600.0, None),  # running when the split is made: left out
        ],
        columns=["task", "duration_s", "segment_seconds"],
    )


def test_measured_tasks_split_by_each_models_seconds_the_others_by_series() -> None:
    allocation = costs.allocate(_telemetry(), SERIES, cost_per_hour=3.6)
    cost = allocation.set_index(["task", "segment"])["cost"]

    # ingest: 36 s at 3.6 per hour = 0.036, split 3:1 by series.
    assert cost["ingest", "alpha"] == pytest.approx(0.027)
    assert cost["ingest", "beta"] == pytest.approx(0.009)
    # train: both attempts (90 s = 0.09), split 1:3 by the seconds the segments measured.
    assert cost["train", "alpha"] == pytest.approx(0.0225)
    assert cost["train", "beta"] == pytest.approx(0.0675)
    # score: split by its own measure, which names a segment with no series now.
    assert cost["score", "alpha"] == pytest.approx(0.0036)
    assert cost["score", "gamma"] == pytest.approx(0.0036)
    assert "monitor" not in set(allocation["task"])
    assert set(allocation.loc[allocation["task"] == "ingest", "basis"]) == {costs.SERIES}
    assert set(allocation.loc[allocation["task"] != "ingest", "basis"]) == {costs.MEASURED}
    for _, shares in allocation.groupby("task")["share"]:
        assert shares.sum() == pytest.approx(1.0)
    # Nothing is lost or counted twice: the models' costs add up to the job's.
    assert allocation["cost"].sum() == pytest.approx(costs.job_cost(_telemetry(), 3.6))
    assert costs.job_cost(_telemetry(), 3.6) == pytest.approx(0.1332)


def test_a_task_without_measure_or_series_is_one_unattributed_row_so_the_split_adds_up() -> None:
    telemetry = pd.DataFrame(
        [("ingest", 36.0, None), ("score", 36.0, {"alpha": 0.0})],
        columns=["task", "duration_s", "segment_seconds"],
    )
    nothing_forecast = costs.allocate(telemetry, {}, 1.0)
    assert nothing_forecast[["segment", "task", "basis", "share"]].to_dict("records") == [
        {"segment": None, "task": "ingest", "basis": costs.UNATTRIBUTED, "share": 1.0},
        {"segment": None, "task": "score", "basis": costs.UNATTRIBUTED, "share": 1.0},
    ]
    assert nothing_forecast["cost"].sum() == pytest.approx(costs.job_cost(telemetry, 1.0))
    assert costs.job_cost(telemetry, 1.0) == pytest.approx(0.02)
    assert costs.per_model(nothing_forecast).empty  # no model carries it
    # A measure of zero seconds is no measure: the series decide.
    score = costs.allocate(telemetry, {"alpha": 1, "beta": 1}, 1.0)
    assert set(score.loc[score["task"] == "score", "basis"]) == {costs.SERIES}
    assert costs.UNATTRIBUTED not in set(score["basis"])


def _money(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    assert found, pattern
    return float(found.group(1))


@pytest.mark.parametrize("series", [SERIES, {}], ids=["models forecast", "nothing forecast"])
def test_the_reports_cost_split_adds_up_to_its_total(series: dict[str, int]) -> None:
    allocation = costs.allocate(_telemetry(), series, cost_per_hour=3.6)
    total = costs.job_cost(_telemetry(), 3.6)

    text = "\n".join(cost_section(allocation, total, 3.6, {}))

    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")][2:]
    split = sum(float(cells[1]) for cells in rows)  # every model is listed (fewer than 10)
    assert _money(text, r"\*\*([0-9.]+)\*\* in total") == pytest.approx(total, rel=1e-2)
    assert split == pytest.approx(total, abs=1e-4)
    if not series:
        # Nothing forecast: ingest has no model to carry it, and the text says why.
        assert "| (unattributed: shared tasks, no series forecast) | 0.0360 |" in text
        assert "attributed to no model** (ingest)" in text
        assert "this run forecast no series" in text
    else:
        assert "unattributed" not in text


def test_spark_map_values_and_old_rows_without_the_column_are_read() -> None:
    telemetry = pd.DataFrame(
        [("train", 10.0, [("alpha", 1.0), ("beta", 1.0)]), ("score", 10.0, math.nan)],
        columns=["task", "duration_s", "segment_seconds"],
    )
    allocation = costs.allocate(telemetry, {"alpha": 1}, 1.0)
    assert allocation.loc[allocation["task"] == "train", "share"].tolist() == [0.5, 0.5]
    assert allocation.loc[allocation["task"] == "score", "segment"].tolist() == ["alpha"]
    without_column = telemetry.drop(columns="segment_seconds")
    assert set(costs.allocate(without_column, {"alpha": 1}, 1.0)["basis"]) == {costs.SERIES}


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match=r"compute_cost_per_hour=-1\.0: must be >= 0"):
        costs.allocate(_telemetry(), SERIES, -1.0)


def test_per_model_orders_by_cost_and_the_report_names_the_total() -> None:
    allocation = costs.allocate(_telemetry(), SERIES, cost_per_hour=3.6)
    models = costs.per_model(allocation)

    assert models["segment"].tolist() == ["beta", "alpha", "gamma"]
    beta = models.iloc[0]
    assert beta["measured"] == pytest.approx(0.0675) and beta["shared"] == pytest.approx(0.009)
    assert beta["cost"] == pytest.approx(0.0765)
    assert models["job_share"].sum() == pytest.approx(1.0)
    assert costs.per_model(allocation.iloc[0:0]).empty

    text = "\n".join(cost_section(allocation, 0.1332, 3.6, {}))
    assert "price of 3.6 per hour" in text and "**0.133** in total" in text
    assert "(score, train) is measured" in text
    assert "| beta | 0.0765 | 0.0675 | 0.0090 | 57.4% |" in text
    assert cost_format(0.000418) == ".6f" and format(5.12e-05, ".6f") == "0.000051"
    assert cost_format(12.5) == ".2f" and cost_format(0.0) == ".2f"
