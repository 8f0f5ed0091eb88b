"""Helpers of the whole-job tests: run the monthly job locally, plant a shift, read tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from demand_forecasting import names
from demand_forecasting.data.config import (
    DatasetConfig,
    load_dataset_config,
    parse_month,
    slugify,
)
from demand_forecasting.data.landing import land
from demand_forecasting.platform.context import RunContext, build_context
from demand_forecasting.runner.results import JobRunResult

RESTATED_SUFFIX = "restated"


def handed_over(
    state: Path, catalog: str, schema: str, run: JobRunResult, task_key: str, key: str
) -> Any:
    """What ``task_key`` of job run ``run`` handed over under ``key`` (job_handover)."""
    ctx = build_context("dev", catalog, schema, state_dir=state, job_run_id=str(run.run_id))
    return ctx.handover.read(task_key, key)


def in_segment(frame: pd.DataFrame, config: DatasetConfig, segment: str) -> pd.Series:
    """Rows of a landing frame whose series belong to ``segment`` (a slugged segment name)."""
    landing = {canonical: source for source, canonical in config.rename}
    parts = []
    for key in config.segment_keys:
        group = next((g for g in config.groups if g.name == key), None)
        if group is None:
            parts.append(frame[landing[key]].map(slugify))
        else:
            parts.append(
                frame[landing[group.source]]
                .map(group.group_of())
                .map(lambda v: slugify(v) if isinstance(v, str) else "")
            )
    names = parts[0]
    for part in parts[1:]:
        names = names + "__" + part
    return names == segment


def plant_shift(
    folder: Path, config: DatasetConfig, segment: str, factor: float, months: int
) -> int:
    """Multiply ``segment``'s target by ``factor`` over the newest ``months`` landed months.

    The newest month's file (not yet ingested) is rewritten in place; the older months are
    restated in one extra landing file (a source correction, loaded later, so silver's
    latest-load-wins takes it). Returns the rows changed.
    """
    files = sorted(
        p for p in folder.glob(f"{config.file_prefix}_*.csv") if RESTATED_SUFFIX not in p.name
    )[-months:]
    target = next(source for source, canonical in config.rename if canonical == config.target)
    changed, restated = 0, []
    for index, path in enumerate(files):
        frame = pd.read_csv(path, dtype=str)
        rows = in_segment(frame, config, segment)
        frame.loc[rows, target] = (frame.loc[rows, target].astype(float) * factor).round(1)
        changed += int(rows.sum())
        if index == len(files) - 1:
            frame.to_csv(path, index=False)
        else:
            restated.append(frame[rows])
    if restated:
        pd.concat(restated).to_csv(
            folder / f"{config.file_prefix}_{RESTATED_SUFFIX}_{files[-1].stem[-7:]}_{segment}.csv",
            index=False,
        )
    return changed


TINY_DATASET = """\
# Three segments of Tasmania (six series): the whole-job tests' dataset.
extends: aus_retail_small
name: aus_retail_tiny
file_prefix: aus_retail_tiny
description: Tasmania, food, household and other retailing only (whole-job tests)
source:
  package_csv:
    include:
      Industry:
        - Food retailing
        - Supermarket and grocery stores
        - Household goods retailing
        - Hardware, building and garden supplies retailing
        - Other retailing
        - Pharmaceutical, cosmetic and toiletry goods retailing
"""


def write_tiny_dataset(folder: Path) -> Path:
    """The tiny dataset config as a YAML file (``--dataset`` takes its path)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aus_retail_tiny.yml"
    path.write_text(TINY_DATASET)
    return path


def drop_landed_before(folder: Path, config: DatasetConfig, first_year: int) -> int:
    """Remove landed month files before ``first_year`` (a shorter history, a faster test)."""
    removed = 0
    for path in folder.glob(f"{config.file_prefix}_*.csv"):
        year = path.stem[len(config.file_prefix) + 1 :][:4]
        if year.isdigit() and int(year) < first_year:
            path.unlink()
            removed += 1
    return removed


def land_tiny_history(state: Path, catalog: str, schema: str) -> tuple[Path, DatasetConfig, Path]:
    """The tiny dataset's config file beside ``state`` and its history from 2006 to 2015-12
    landed in the local landing volume of ``catalog.schema``: ``(config file, config,
    landing folder)``."""
    dataset = write_tiny_dataset(state.parent / "conf")
    config = load_dataset_config(str(dataset))
    landing = state / "volumes" / catalog / schema / names.LANDING_VOLUME / config.name
    land(config, landing, until=parse_month("2015-12"))
    drop_landed_before(landing, config, 2006)
    return dataset, config, landing


ROOT = Path(__file__).resolve().parents[2]

#: Tables docs/tables.md documents that a plain monthly run does not make: silver_plans only
#: for a dataset with `planned` columns, approval_requests only on a target with
#: require_approval. Their columns are checked by the tests that make them.
CONDITIONAL_TABLES = (names.PLANS, names.APPROVAL_REQUESTS)


def documented_columns() -> dict[str, set[str]]:
    """``{table: columns}`` from docs/tables.md (a row's first cell may name several)."""
    documented: dict[str, set[str]] = {}
    table = None
    for line in (ROOT / "docs" / "tables.md").read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## `(\w+)`", line.strip())
        if heading:
            table = heading.group(1)
            documented[table] = set()
        elif table and line.startswith("| `"):
            documented[table] |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return documented


def assert_documented_columns(
    ctx: RunContext, table: str, extra: frozenset[str] = frozenset()
) -> None:
    """``table`` exists with exactly the columns docs/tables.md gives it, plus ``extra``
    (columns a table has per dataset, e.g. silver_plans' one per planned covariate)."""
    columns = documented_columns()[table] | extra
    assert ctx.tables.exists(ctx.table(table)), f"docs/tables.md documents {table}"
    actual = set(ctx.tables.read(ctx.table(table)).columns)
    assert actual == columns, (
        f"{table}: written but not documented {sorted(actual - columns)}, documented but "
        f"not written {sorted(columns - actual)}"
    )
