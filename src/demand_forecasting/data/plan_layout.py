"""Where plan files live and what they hold: names and columns, without Spark.

Plan files (:mod:`demand_forecasting.data.plans`) sit beside a dataset's sales folder, never
inside it, since the sales stream (Spark's file source, Auto Loader too) reads its folder
recursively: ``<landing volume>/plans/<dataset>/<file_prefix>_plan_<YYYY-MM>[_<suffix>].csv``.
``land`` writes them and build_features loads them; both take the layout from here.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from demand_forecasting.data.config import DatasetConfig, DatasetConfigError

#: The landing volume's folder of plan files (one sub-folder per dataset).
PLANS_FOLDER = "plans"
#: Rule of a plan file's last line without a line break (the file is not loaded).
FILE_CUT_RULE = "file_ends_with_line_break"


def plans_folder(landing_folder: Path) -> Path:
    """The plan folder of a dataset's landing folder: ``<volume>/plans/<dataset>``.

    Raises:
        DatasetConfigError: the dataset is named ``plans`` (its sales folder would hold every
            dataset's plans, and its stream would read them).
    """
    if landing_folder.name == PLANS_FOLDER:
        raise DatasetConfigError(
            f"dataset config {PLANS_FOLDER!r}, name: the landing volume's folder "
            f"{PLANS_FOLDER!r} holds the plan files; give the dataset another name"
        )
    return landing_folder.parent / PLANS_FOLDER / landing_folder.name


def plan_file_name(config: DatasetConfig, month: date) -> str:
    """``<file_prefix>_plan_<YYYY-MM>.csv``: the plan issued in ``month``."""
    return f"{config.file_prefix}_plan_{month:%Y-%m}.csv"


def plan_file_month(config: DatasetConfig, name: str) -> date | None:
    """The month a plan file was issued (``<file_prefix>_plan_<YYYY-MM>[_<suffix>].csv``), or
    None for a file named otherwise."""
    found = re.fullmatch(
        rf"{re.escape(config.file_prefix)}_plan_([0-9]{{4}})-([0-9]{{2}})(?:_[^.]*)?[.]csv", name
    )
    if found is None or not 1 <= int(found.group(2)) <= 12:
        return None
    return date(int(found.group(1)), int(found.group(2)), 1)


def plan_columns(config: DatasetConfig) -> tuple[str, ...]:
    """Canonical columns of a plan file, in ``rename`` order: the series id and keys, the month
    and the planned columns."""
    wanted = {*config.series_keys, config.month_column, *config.planned}
    if config.series_id:
        wanted.add(config.series_id)
    return tuple(c for c in config.canonical_columns if c in wanted)


def plan_landing_columns(config: DatasetConfig) -> tuple[str, ...]:
    """A plan file's header: the landing names of :func:`plan_columns`."""
    wanted = set(plan_columns(config))
    return tuple(source for source, name in config.rename if name in wanted)
