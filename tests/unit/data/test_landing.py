"""Landing month by month: ERP-like files, idempotent, next month, and clear refusals."""

from __future__ import annotations

import argparse
import csv
import dataclasses
from datetime import date
from pathlib import Path

import pytest

from demand_forecasting.cli import build_parser
from demand_forecasting.data import landing
from demand_forecasting.data.config import (
    CsvFileSource,
    DatasetConfig,
    load_dataset_config,
    parse_month,
)
from demand_forecasting.data.ingest import check_landing_files
from demand_forecasting.data.landing import LandingError, land, landed_months


@pytest.fixture(scope="module")
def small() -> DatasetConfig:
    return load_dataset_config("aus_retail_small")


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_land_until_writes_one_erp_like_file_per_month(
    tmp_path: Path, small: DatasetConfig
) -> None:
    report = land(small, tmp_path, until=parse_month("1983-03"))

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        f"aus_retail_small_{m}.csv"
        for m in [
            "1982-04",
            "1982-05",
            "1982-06",
            "1982-07",
            "1982-08",
            "1982-09",
            "1982-10",
            "1982-11",
            "1982-12",
            "1983-01",
            "1983-02",
            "1983-03",
        ]
    ]
    rows = _rows(tmp_path / "aus_retail_small_1983-03.csv")
    assert rows[0] == ["State", "Industry", "Series ID", "Month", "Turnover"]
    assert {r[0] for r in rows[1:]} == {"Tasmania"}
    assert {r[3] for r in rows[1:]} == {"1983-03-01"}  # the source's own month spelling
    assert report.rows == sum(len(_rows(p)) - 1 for p in tmp_path.iterdir())
    assert "landed 12 monthly file(s) 1982-04 .. 1983-03" in report.summary()
    # Complete files pass ingest's file rules and end with a line break (rule row_complete).
    assert check_landing_files(tmp_path, small).cut_short == ()


def test_landing_is_idempotent_and_next_month_continues(
    tmp_path: Path, small: DatasetConfig
) -> None:
    land(small, tmp_path, until=parse_month("1982-06"))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}

    again = land(small, tmp_path, until=parse_month("1982-06"))
    assert again.written == () and again.already_landed == 3
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before

    following = land(small, tmp_path, next_month=True)
    assert [p.name for p in following.written] == ["aus_retail_small_1982-07.csv"]
    assert landed_months(tmp_path, small)[-1] == date(1982, 7, 1)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_a_month_whose_file_was_renamed_for_a_correction_is_not_landed_again(
    tmp_path: Path, small: DatasetConfig
) -> None:
    land(small, tmp_path, until=parse_month("1982-06"))
    # As ingest asks for a file rewritten after it was read: renamed, so read as a new file.
    (tmp_path / "aus_retail_small_1982-06.csv").rename(
        tmp_path / "aus_retail_small_1982-06_correction.csv"
    )

    assert land(small, tmp_path, until=parse_month("1982-06")).written == ()
    following = land(small, tmp_path, next_month=True)
    assert [p.name for p in following.written] == ["aus_retail_small_1982-07.csv"]


def test_landing_refuses_what_it_cannot_do(tmp_path: Path, small: DatasetConfig) -> None:
    with pytest.raises(LandingError, match="nothing landed yet"):
        land(small, tmp_path, next_month=True)
    with pytest.raises(LandingError, match=r"outside the source .* \(1982-04 \.\. 2018-12\)"):
        land(small, tmp_path, until=parse_month("2019-01"))
    land(small, tmp_path, until=parse_month("2018-11"))
    land(small, tmp_path, next_month=True)
    with pytest.raises(LandingError, match="2019-01 is outside"):
        land(small, tmp_path, next_month=True)


def test_synthetic_landing_is_deterministic_month_by_month(tmp_path: Path) -> None:
    config = load_dataset_config("synthetic")
    land(config, tmp_path / "at_once", until=parse_month("1982-06"), series=6)
    land(config, tmp_path / "stepwise", until=parse_month("1982-04"), series=6)
    land(config, tmp_path / "stepwise", next_month=True, series=6)
    land(config, tmp_path / "stepwise", next_month=True, series=6)

    for name in ("synthetic_1982-04.csv", "synthetic_1982-06.csv"):
        once = (tmp_path / "at_once" / name).read_text()
        assert once == (tmp_path / "stepwise" / name).read_text()
    rows = _rows(tmp_path / "at_once" / "synthetic_1982-05.csv")
    assert rows[0] == ["Region", "Category", "Product", "Period", "Units", "Price", "Promo"]
    assert len(rows) == 7 and {r[3] for r in rows[1:]} == {"1982-05"}
    assert check_landing_files(tmp_path / "at_once", config).cut_short == ()
    other_seed = tmp_path / "other_seed"
    land(config, other_seed, until=parse_month("1982-04"), series=6, seed=7)
    assert (other_seed / "synthetic_1982-04.csv").read_text() != (
        tmp_path / "at_once" / "synthetic_1982-04.csv"
    ).read_text()


def test_dataset_without_a_source_cannot_be_landed(tmp_path: Path) -> None:
    path = tmp_path / "byod.yml"
    path.write_text("extends: aus_retail\nname: byod\nsource: null\n", encoding="utf-8")
    with pytest.raises(LandingError, match="no bundled source"):
        land(load_dataset_config(str(path)), tmp_path, until=parse_month("2015-01"))


def test_land_command_writes_into_a_given_folder(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "land",
            "--dataset",
            "aus_retail_small",
            "--until",
            "1982-05",
            "--landing-dir",
            str(tmp_path),
        ]
    )
    assert isinstance(args, argparse.Namespace)
    assert landing.main(args) == 0
    assert len(landed_months(tmp_path, load_dataset_config("aus_retail_small"))) == 2
    args = build_parser().parse_args(
        [
            "land",
            "--dataset",
            "aus_retail_small",
            "--until",
            "1970-01",
            "--landing-dir",
            str(tmp_path),
        ]
    )
    assert landing.main(args) == 1
    args = build_parser().parse_args(["land", "--dataset", "nope", "--next-month"])
    assert landing.main(args) == 2


def test_land_command_needs_no_spark_and_no_mlflow(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demand_forecasting.cli import main as cli_main
    from demand_forecasting.platform import context

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("land built a run context (Spark + MLflow) to write CSV files")

    monkeypatch.setattr(context, "build_context", refuse)
    assert cli_main(["land", "--dataset", "aus_retail_small", "--until", "1982-05"]) == 0
    folder = state_dir / "volumes" / "dev" / "demand_forecasting" / "landing" / "aus_retail_small"
    assert len(landed_months(folder, load_dataset_config("aus_retail_small"))) == 2


def test_land_command_keeps_one_dataset_per_schema(state_dir: Path, tmp_path: Path) -> None:
    from demand_forecasting.cli import main as cli_main

    assert cli_main(["land", "--dataset", "aus_retail_small", "--until", "1982-05"]) == 0
    config = tmp_path / "byod.yml"
    config.write_text("extends: aus_retail\nname: byod\nsource: null\n", encoding="utf-8")
    history = _history(
        tmp_path / "history.csv", [["Victoria", "Food retailing", "V1", "2023-01-01", "1", ""]]
    )
    mine = ["land", "--dataset", str(config), "--from-csv", str(history), "--until", "2023-01"]
    assert cli_main(mine) == 1  # the default schema holds aus_retail_small
    landing_volume = state_dir / "volumes" / "dev" / "demand_forecasting" / "landing"
    assert not (landing_volume / "byod").exists()
    assert cli_main([*mine, "--schema", "byod"]) == 0


def _history(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["State", "Industry", "Series ID", "Month", "Turnover", "Note"])
        writer.writerows(rows)
    return path


def _byod(tmp_path: Path) -> DatasetConfig:
    path = tmp_path / "byod.yml"
    path.write_text(
        "extends: aus_retail\nname: byod\nfile_prefix: sales\nsource: null\n", encoding="utf-8"
    )
    return load_dataset_config(str(path))


def test_land_from_your_own_history_file_month_by_month(tmp_path: Path) -> None:
    history = _history(
        tmp_path / "history.csv",
        [
            ["Victoria", "Food retailing", "V1", "2023-01-01", "10.5", "x"],
            ["Victoria", "Food retailing", "V1", "2023-02-01", "11", ""],
            ["Tasmania", "Food retailing", "T1", "2023-02-01", "not a number", ""],
            ["Victoria", "Food retailing", "V1", "2023-03-01", "12", ""],
        ],
    )
    landing_dir = tmp_path / "landing"
    config = _byod(tmp_path)
    own = ["land", "--dataset", str(tmp_path / "byod.yml"), "--from-csv", str(history)]
    args = build_parser().parse_args(
        [*own, "--until", "2023-02", "--landing-dir", str(landing_dir)]
    )

    assert landing.main(args) == 0

    assert landed_months(landing_dir, config) == [date(2023, 1, 1), date(2023, 2, 1)]
    # The landing columns as they are in the file (bad values too: the quality gate judges
    # them), without the column the dataset does not know.
    assert _rows(landing_dir / "sales_2023-02.csv") == [
        ["State", "Industry", "Series ID", "Month", "Turnover"],
        ["Victoria", "Food retailing", "V1", "2023-02-01", "11"],
        ["Tasmania", "Food retailing", "T1", "2023-02-01", "not a number"],
    ]
    next_args = build_parser().parse_args([*own, "--next-month", "--landing-dir", str(landing_dir)])
    assert landing.main(next_args) == 0
    assert landed_months(landing_dir, config)[-1] == date(2023, 3, 1)
    assert check_landing_files(landing_dir, config).cut_short == ()


def test_a_history_file_that_cannot_be_landed_is_refused_naming_the_rows(
    tmp_path: Path,
) -> None:
    config = _byod(tmp_path)
    bad_months = _history(
        tmp_path / "months.csv",
        [
            ["Victoria", "Food retailing", "V1", "2023-01-01", "1"],
            ["Victoria", "Food retailing", "V1", "Jan 2023", "2"],
        ],
        header=["State", "Industry", "Series ID", "Month", "Turnover"],
    )
    no_turnover = _history(
        tmp_path / "columns.csv",
        [["Victoria", "Food retailing", "V1", "2023-01-01"]],
        header=["State", "Industry", "Series ID", "Month"],
    )
    landing_dir = tmp_path / "landing"

    with pytest.raises(LandingError, match=r"line 3: 'Jan 2023'.*nothing was landed"):
        land(
            dataclasses.replace(config, source=CsvFileSource(bad_months)),
            landing_dir,
            until=parse_month("2023-01"),
        )
    # No row parses: the config's month.format is what to fix, not the rows.
    with pytest.raises(LandingError, match=r"no row matches: set `month.format` in .*'byod'"):
        land(
            dataclasses.replace(config, month_format="yyyy-MM", source=CsvFileSource(bad_months)),
            landing_dir,
            until=parse_month("2023-01"),
        )
    with pytest.raises(LandingError, match=r"columns.csv: the header lacks \['Turnover'\]"):
        land(
            dataclasses.replace(config, source=CsvFileSource(no_turnover)),
            landing_dir,
            until=parse_month("2023-01"),
        )
    with pytest.raises(LandingError, match="--from-csv FILE"):
        land(config, landing_dir, until=parse_month("2023-01"))
    assert not landing_dir.exists() or not any(landing_dir.iterdir())


def test_the_pbs_recipe_in_the_docs_lands_the_shipped_pbs_config(tmp_path: Path) -> None:
    # docs/data_pipeline.md, "A second dataset: PBS": its land commands, as written (landing
    # into a folder and from an earlier month), land the package's month names as they are.
    docs = (Path(__file__).resolve().parents[3] / "docs" / "data_pipeline.md").read_text()
    recipe = docs.split("### A second dataset: PBS", 1)[1].split("```bash\n", 1)[1]
    commands = [
        line.split("demand-forecasting ", 1)[1].split()
        for line in recipe.split("```", 1)[0].splitlines()
        if " land " in line
    ]
    assert [c[c.index("--dataset") + 1] for c in commands] == ["pbs", "pbs"]
    assert not any("--from-csv" in c for c in commands)
    first, following = commands
    first[first.index("--until") + 1] = "1991-08"  # the docs' 2005-12, short
    folder = ["--landing-dir", str(tmp_path / "landing")]

    assert landing.main(build_parser().parse_args([*first, *folder])) == 0
    assert landing.main(build_parser().parse_args([*following, *folder])) == 0

    config = load_dataset_config("pbs")
    landing_dir = tmp_path / "landing"
    assert landed_months(landing_dir, config) == [date(1991, m, 1) for m in (7, 8, 9)]
    september = _rows(landing_dir / "pbs_1991-09.csv")
    assert september[0] == list(config.landing_columns)
    assert len(september) == 1 + 320  # 320 of the 336 series have rows from 1991-07
    # Landed as the package writes it; the quality gate reads the name as landing did.
    assert {row[0] for row in september[1:]} == {"1991 Sept"}
