"""Land a dataset's history month by month, as an ERP export would drop it.

``demand-forecasting land --until 2015-12`` writes one CSV per month up to that month into the
dataset's folder of the landing volume; ``--next-month`` writes the month after the latest one
there. A file is named ``<file_prefix>_<YYYY-MM>.csv``, has a header with the dataset's own
column names and carries the source's values as they are. Landing is idempotent: a month
already landed is never rewritten. Files are written under a hidden name and renamed, so a
stream never sees half a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import cast

import pandas as pd

from demand_forecasting import names
from demand_forecasting.data.config import (
    ANY_MONTH_NAME,
    CsvFileSource,
    DatasetConfig,
    DatasetConfigError,
    PackageCsvSource,
    SyntheticSource,
    add_month,
    load_dataset_config,
    month_count,
    month_name_rewrites,
    month_strftime,
    numeric_month_pattern,
    parse_month,
    reads_month_names,
)
from demand_forecasting.data.plan_layout import (
    PLANS_FOLDER,
    plan_file_month,
    plan_file_name,
    plan_landing_columns,
    plans_folder,
)
from demand_forecasting.data.synthetic import month_frame, series_parameters
from demand_forecasting.platform.detect import on_databricks
from demand_forecasting.platform.paths import default_state_dir, volume_path

log = logging.getLogger(__name__)


class LandingError(RuntimeError):
    """Landing cannot do what was asked (no source, month out of range, nothing landed yet)."""


@dataclass(frozen=True)
class LandingReport:
    """What one landing call did."""

    folder: Path
    written: tuple[Path, ...]
    rows: int
    already_landed: int
    #: Plan files written (a synthetic dataset with ``planned`` columns).
    plans: tuple[Path, ...] = ()

    def summary(self) -> str:
        """One line for people."""
        plans = (
            f"; {len(self.plans)} plan file(s) {self.plans[0].stem[-7:]} .. "
            f"{self.plans[-1].stem[-7:]} into {self.plans[0].parent}"
            if self.plans
            else ""
        )
        if not self.written:
            return f"nothing to land: those months are already in {self.folder}{plans}"
        first, last = self.written[0].stem[-7:], self.written[-1].stem[-7:]
        return (
            f"landed {len(self.written)} monthly file(s) {first} .. {last} ({self.rows:,} "
            f"rows) into {self.folder}; {self.already_landed} month(s) were already there{plans}"
        )


def month_file_name(config: DatasetConfig, month: date) -> str:
    """``<file_prefix>_<YYYY-MM>.csv``."""
    return f"{config.file_prefix}_{month:%Y-%m}.csv"


def landed_months(folder: Path, config: DatasetConfig) -> list[date]:
    """The months already landed in ``folder`` for ``config``, in order.

    A month counts as landed by its own file or by a file of the month with a suffix
    (``<file_prefix>_<YYYY-MM>_<anything>.csv``: a correction, or the month's file renamed so
    that ingest reads it again), so that landing never writes the month's file again.
    """
    prefix = re.escape(config.file_prefix)
    pattern = re.compile(rf"^{prefix}_(\d{{4}}-\d{{2}})(?:_[^.]*)?\.csv$")
    if not folder.is_dir():
        return []
    found = (pattern.match(p.name) for p in folder.iterdir())
    return sorted({parse_month(m.group(1)) for m in found if m})


def land(
    config: DatasetConfig,
    folder: Path,
    *,
    until: date | None = None,
    next_month: bool = False,
    series: int | None = None,
    seed: int | None = None,
    horizon: int = 12,
) -> LandingReport:
    """Land every missing month up to ``until``, or the month after the latest landed one.

    A synthetic dataset with ``planned`` columns also gets, for every month up to ``until``,
    the plan issued that month (:func:`land_plans`).

    Args:
        config: the dataset; its ``source`` says where the history comes from.
        folder: the dataset's landing folder (created if missing).
        until: land all months of the source up to this month (first of month).
        next_month: land only the month after the latest landed month.
        series, seed: override the synthetic source's defaults (synthetic datasets only).
        horizon: months a plan file plans ahead.

    Raises:
        LandingError: the dataset has no source, the month is outside the source's range, or
            ``next_month`` is asked before anything was landed.
    """
    source = _require_source(config)
    history = None if isinstance(source, SyntheticSource) else _read_history(config, source)
    first, last = source_range(config, source, history)
    done = landed_months(folder, config)
    if next_month:
        if not done:
            raise LandingError(
                f"nothing landed yet in {folder}; start with `land --until "
                f"YYYY-MM` (the source starts at {first:%Y-%m})"
            )
        until = add_month(done[-1])
    if until is None:
        raise LandingError("say --until YYYY-MM or --next-month")
    if until < first or until > last:
        raise LandingError(
            f"{until:%Y-%m} is outside the source of dataset {config.name!r} "
            f"({first:%Y-%m} .. {last:%Y-%m})"
        )
    wanted = [m for m in _months_between(first, until) if m not in set(done)]
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = 0
    for month, frame in month_frames(
        config, source, wanted, series=series, seed=seed, history=history
    ):
        written.append(_write_atomically(frame, folder / month_file_name(config, month)))
        rows += len(frame)
    plans = land_plans(config, folder, until, horizon=horizon, series=series, seed=seed)
    return LandingReport(folder, tuple(written), rows, already_landed=len(done), plans=plans)


def land_plans(
    config: DatasetConfig,
    folder: Path,
    until: date,
    *,
    horizon: int = 12,
    series: int | None = None,
    seed: int | None = None,
) -> tuple[Path, ...]:
    """Write the missing plan files up to ``until`` of a synthetic dataset with ``planned``
    columns; return them (none for another dataset: its plans come from its planners).

    The plan issued in month M (:func:`~demand_forecasting.data.plans.plan_file_name`) has,
    for every series, the generator's values of the planned columns for the ``horizon``
    months after M (fewer near the source's last month): the generator is deterministic by
    seed, so these are the values the sales files of those months will carry. A month whose
    plan is there (by its own file or a suffixed one) is never written again.
    """
    source = config.source
    if not config.planned or not isinstance(source, SyntheticSource):
        return ()
    target = plans_folder(folder)
    issued = set()
    if target.is_dir():
        issued = {plan_file_month(config, p.name) for p in target.iterdir()}
    months = [m for m in _months_between(source.first_month, until) if m not in issued]
    if not months:
        return ()
    last = min(add_month(months[-1], horizon), source.last_month)
    needed = _months_between(add_month(months[0]), last)
    columns = list(plan_landing_columns(config))
    frames = {
        month: frame[columns]
        for month, frame in month_frames(config, source, needed, series=series, seed=seed)
    }
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for month in months:
        ahead = [
            frames[m] for m in (add_month(month, k) for k in range(1, horizon + 1)) if m in frames
        ]
        if ahead:
            plan = pd.concat(ahead, ignore_index=True)
            written.append(_write_atomically(plan, target / plan_file_name(config, month)))
    return tuple(written)


Source = PackageCsvSource | CsvFileSource | SyntheticSource


def source_range(
    config: DatasetConfig, source: Source, history: pd.DataFrame | None = None
) -> tuple[date, date]:
    """The first and last month the dataset's source has (``history``: its rows, if read)."""
    if isinstance(source, SyntheticSource):
        return source.first_month, source.last_month
    if history is None:
        history = _read_history(config, source)
    months = _history_months(config, history, source)
    return months.min(), months.max()


def month_frames(
    config: DatasetConfig,
    source: Source,
    months: list[date],
    *,
    series: int | None = None,
    seed: int | None = None,
    history: pd.DataFrame | None = None,
) -> Iterator[tuple[date, pd.DataFrame]]:
    """Yield ``(month, landing frame)`` for each of ``months`` that the source has
    (``history``: the source's rows, if already read)."""
    if not months:
        return
    if isinstance(source, SyntheticSource):
        seed = source.seed if seed is None else seed
        params = series_parameters(series or source.series, seed)
        for month in months:
            yield month, month_frame(config, params, seed, source.first_month, month)
        return
    if history is None:
        history = _read_history(config, source)
    by_month = history.groupby(_history_months(config, history, source).to_numpy())
    frames = {cast(date, month): frame for month, frame in by_month}
    for month in months:
        if month in frames:
            yield month, frames[month].reset_index(drop=True)


def _require_source(config: DatasetConfig) -> Source:
    if config.source is None:
        raise LandingError(
            f"dataset {config.name!r} has no bundled source to land from: pass your history "
            "file with --from-csv FILE, or drop its monthly files into the landing folder "
            "yourself"
        )
    return config.source


def _months_between(first: date, last: date) -> list[date]:
    return [add_month(first, i) for i in range(month_count(first, last))]


def _read_history(config: DatasetConfig, source: PackageCsvSource | CsvFileSource) -> pd.DataFrame:
    """The source's rows, landing columns only, every value as the text in the file."""
    # Text as it is in the file: landing files carry the source's own spelling.
    if isinstance(source, CsvFileSource):
        if not source.path.is_file():
            raise LandingError(f"--from-csv {source.path}: no such file")
        frame = pd.read_csv(source.path, dtype=str, keep_default_na=False, encoding="utf-8")
        missing = [c for c in config.landing_columns if c not in frame.columns]
        if missing:
            raise LandingError(
                f"{source.path}: the header lacks {missing} of dataset {config.name!r}; a "
                f"history file has the landing columns {list(config.landing_columns)} (the "
                "keys of `rename` in the dataset config)"
            )
        extra = [c for c in frame.columns if c not in config.landing_columns]
        if extra:
            log.warning(
                "land: %s: columns %s are not in dataset %r, not landed",
                source.path,
                extra,
                config.name,
            )
        return frame[list(config.landing_columns)]
    resource = resources.files(source.package).joinpath(source.resource)
    with resource.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    for column, values in source.include.items():
        frame = frame[frame[column].isin(values)]
    return frame[list(config.landing_columns)].reset_index(drop=True)


def _history_months(
    config: DatasetConfig, frame: pd.DataFrame, source: PackageCsvSource | CsvFileSource
) -> pd.Series:
    """The month of every row; a row whose month does not parse stops landing, named."""
    column = dict((c, s) for s, c in config.rename)[config.month_column]
    parsed = parse_months(frame[column], config.month_format)
    bad = parsed.isna()
    if bad.any():
        where = source.path if isinstance(source, CsvFileSource) else source.resource
        lines = ", ".join(
            f"line {int(str(index)) + 2}: {value!r}"
            for index, value in frame[column][bad].head(5).items()
        )
        # No row parses: the config's pattern, not the file, is what to fix.
        fix = (
            f"no row matches: set `month.format` in dataset config {config.name!r} to the "
            "pattern of these values (yyyy, MM, dd, HH, mm, ss; MMM for a month name such as "
            "Jul or Sept)"
            if bad.all()
            else "a row cannot be landed without its month: fix those rows"
        )
        raise LandingError(
            f"{where}: {int(bad.sum())} row(s) have a {column!r} that is not a month in the "
            f"format {config.month_format!r} ({lines}); {fix} (nothing was landed)"
        )
    return parsed.dt.to_period("M").dt.start_time.dt.date


def parse_months(values: pd.Series, pattern: str) -> pd.Series:
    """``values`` (month texts) parsed with a month pattern; NaT where one does not parse.

    The Python twin of :func:`demand_forecasting.data.rules.month_stamp`: a name format
    (``MMM``, ``MMMM``) reads the same names by the same regexes, so that a month landing
    accepts is one validation accepts.
    """
    text = values.astype("string").str.strip()
    if reads_month_names(pattern):
        named = text.str.contains(ANY_MONTH_NAME, regex=True)
        for name, number in month_name_rewrites():
            text = text.str.replace(name, number, regex=True)
        text = text.where(named)
        pattern = numeric_month_pattern(pattern)
    return pd.to_datetime(text, format=month_strftime(pattern), errors="coerce")


def _write_atomically(frame: pd.DataFrame, path: Path) -> Path:
    hidden = path.with_name(f".{path.name}.tmp")
    frame.to_csv(hidden, index=False, lineterminator="\n")
    os.replace(hidden, path)
    return path


# ----------------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``demand-forecasting land``."""
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--until",
        type=parse_month,
        metavar="YYYY-MM",
        help="land every month of the source up to this one",
    )
    when.add_argument(
        "--next-month", action="store_true", help="land the month after the latest landed one"
    )
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable `dataset`)",
    )
    parser.add_argument("--catalog", default="dev", help="catalog of the landing volume")
    parser.add_argument(
        "--schema", default="demand_forecasting", help="schema of the landing volume"
    )
    parser.add_argument("--target", default="dev", help="bundle target")
    parser.add_argument("--series", type=int, help="synthetic datasets: number of series")
    parser.add_argument("--seed", type=int, help="synthetic datasets: random seed")
    parser.add_argument(
        "--horizon",
        type=int,
        default=12,
        help="synthetic datasets with planned columns: months each plan file plans ahead "
        "(bundle variable `horizon`)",
    )
    parser.add_argument(
        "--from-csv",
        type=Path,
        metavar="FILE",
        help="land from your own history file (the dataset's landing columns, all months) "
        "instead of the dataset's source",
    )
    parser.add_argument(
        "--landing-dir",
        type=Path,
        help="write here instead of the landing volume (no Spark needed)",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``demand-forecasting land``; return the exit code."""
    try:
        config = load_dataset_config(args.dataset)
    except DatasetConfigError as exc:
        log.error("land: %s", exc)
        return 2
    if args.from_csv is not None:
        config = dataclasses.replace(config, source=CsvFileSource(args.from_csv))
    folder = args.landing_dir or _landing_volume_folder(args, config)
    others = [] if args.landing_dir else datasets_beside(folder)
    if others:
        log.error(
            "land: schema %s.%s already holds dataset %s (%s); one schema holds one dataset "
            "(ingest's checkpoint and the tables are the schema's), so %r was not landed. Give "
            "it a schema of its own: `land --schema %s ...`, then `run monthly --var "
            "dataset=... --var schema=%s`",
            args.catalog,
            args.schema,
            ", ".join(others),
            folder.parent / others[0],
            config.name,
            config.name,
            config.name,
        )
        return 1
    try:
        report = land(
            config,
            folder,
            until=args.until,
            next_month=args.next_month,
            series=args.series,
            seed=args.seed,
            horizon=args.horizon,
        )
    except LandingError as exc:
        log.error("land: %s", exc)
        return 1
    log.info("land: %s", report.summary())
    return 0


def datasets_beside(folder: Path) -> list[str]:
    """The other datasets with landed files in the landing volume that holds ``folder``."""
    volume = folder.parent
    if not volume.is_dir():
        return []
    return sorted(
        d.name
        for d in volume.iterdir()
        if d.is_dir() and d.name not in (folder.name, PLANS_FOLDER) and any(d.glob("*.csv"))
    )


def _landing_volume_folder(args: argparse.Namespace, config: DatasetConfig) -> Path:
    # Landing writes files only: the volume's path needs no Spark session and no MLflow.
    state_dir = None if on_databricks() else default_state_dir().resolve()
    path = volume_path(
        args.catalog, args.schema, names.LANDING_VOLUME, config.name, state_dir=state_dir
    )
    return Path(path)
