"""Task ``validate_data``: the quality gate between bronze and everything downstream.

New bronze rows (a stream over the bronze table, with its own checkpoint) are judged row by row
by the dataset's rules (:mod:`demand_forecasting.data.rules`) and as a batch by the Great
Expectations suite built from the same rules (:mod:`demand_forecasting.data.expectations`).
Rows that break a rule go to the quarantine table with the rule and their batch id; the others
go, typed and canonical, to the validated table that silver is built from. Every bronze row
lands in exactly one of the two: rows in bronze = accepted + quarantined.

If more than ``--max-bad-row-share`` of a batch is bad, the task fails naming the files, rules
and counts and writes no table (the checkpoint does not advance, so the batch is judged again
next time). The results of every batch (the GE result plus the counts) are saved as JSON in the
data-quality volume and summarised in the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from demand_forecasting import names
from demand_forecasting.data.config import DatasetConfig, load_dataset_config, parse_month
from demand_forecasting.data.expectations import (
    SuiteResult,
    check_agreement,
    import_in_background,
    run_suite,
)
from demand_forecasting.data.ingest import bronze_columns
from demand_forecasting.data.rules import (
    FAILED_RULES,
    FILE_MONTH_RULES,
    KNOWN_RULE_PREFIX,
    LINE_TERMINATED,
    Rule,
    accepted_rows,
    build_rules,
    judge,
    quarantined_rows,
    text,
)
from demand_forecasting.data.streams import (
    append_once,
    checkpoint_query_id,
    delta_source_caught_up,
    run_available_now,
)
from demand_forecasting.platform.context import RunContext
from demand_forecasting.platform.spark import generated_code
from demand_forecasting.task import TaskInputError, run_task

log = logging.getLogger(__name__)


class DataQualityGateError(TaskInputError, RuntimeError):
    """Too large a share of a batch broke the rules; nothing downstream was written."""


@dataclass(frozen=True)
class ValidateConfig:
    """Parameters of the validate task."""

    dataset: DatasetConfig
    max_bad_row_share: float
    #: Rows dated after this month are bad; None means the clock's current month.
    run_month: date | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_row_share <= 1.0:
            raise ValueError(
                f"--max-bad-row-share {self.max_bad_row_share} is not a share "
                "between 0 and 1 (e.g. 0.05 for 5%)"
            )


@dataclass(frozen=True)
class FileCounts:
    """Rows of one landing file in one batch, and how many broke each rule."""

    source_file: str
    rows: int
    bad: int
    by_rule: Mapping[str, int]
    #: Bronze (ingest) batch ids the file's rows came in.
    batch_ids: tuple[int, ...] = ()
    #: Months (``YYYY-MM``) of the file's rows that broke a rule of :data:`FILE_MONTH_RULES`.
    other_months: tuple[str, ...] = ()
    #: The month texts, as landed, of the file's rows that broke ``month_parses`` (a few).
    unparsed_months: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchVerdict:
    """The quality gate's decision on one batch."""

    files: tuple[FileCounts, ...]
    max_bad_row_share: float

    @property
    def rows(self) -> int:
        """Rows in the batch."""
        return sum(f.rows for f in self.files)

    @property
    def bad(self) -> int:
        """Rows that broke at least one rule."""
        return sum(f.bad for f in self.files)

    @property
    def bad_share(self) -> float:
        """Share of bad rows (0 for an empty batch)."""
        return self.bad / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        """True when the bad share is within the limit."""
        return self.bad_share <= self.max_bad_row_share

    def rule_counts(self) -> dict[str, int]:
        """``{rule: rows that broke it}`` over the batch (a row may break several)."""
        totals: dict[str, int] = {}
        for counts in self.files:
            for rule, n in counts.by_rule.items():
                totals[rule] = totals.get(rule, 0) + n
        return totals

    def bronze_batches(self) -> str:
        """The bronze batch ids of the batch, as text (``"3, 4"``)."""
        return ", ".join(str(i) for i in sorted({i for f in self.files for i in f.batch_ids}))


@dataclass(frozen=True)
class ValidationRun:
    """The verdicts of one validate run (``rows_in`` / ``rows_out`` feed the task telemetry)."""

    verdicts: tuple[BatchVerdict, ...]

    @property
    def rows_in(self) -> int:
        """Bronze rows judged."""
        return sum(v.rows for v in self.verdicts)

    @property
    def rows_out(self) -> int:
        """Rows accepted (written to the validated table)."""
        return self.rows_in - self.rows_quarantined

    @property
    def rows_quarantined(self) -> int:
        """Rows written to quarantine."""
        return sum(v.bad for v in self.verdicts)


#: The rule of a month text the configured format does not read.
MONTH_PARSES = "month_parses"
#: Month texts of ``month_parses`` rows named per file (the quarantine table has them all).
UNPARSED_SHOWN = 5


def file_counts(
    judged: DataFrame, rules: Sequence[Rule], month_column: str | None = None
) -> tuple[FileCounts, ...]:
    """Count rows, bad rows and rows per rule for each source file, and list the months of
    rows not of their file's month and (with ``month_column``, the dataset's) the month
    texts that did not parse, in one Spark job."""
    per_rule = [
        F.sum(F.array_contains(FAILED_RULES, r.name).cast("long")).alias(r.name) for r in rules
    ]
    off_month = F.arrays_overlap(F.col(FAILED_RULES), F.array(*map(F.lit, FILE_MONTH_RULES)))
    unparsed = (
        F.when(F.array_contains(FAILED_RULES, MONTH_PARSES), F.col(text(month_column)))
        if month_column is not None
        else F.lit(None).cast("string")
    )
    rows = (
        judged.groupBy("source_file")
        .agg(
            F.count(F.lit(1)).alias("_rows"),
            F.sum((F.size(FAILED_RULES) > 0).cast("long")).alias("_bad"),
            F.collect_set("batch_id").alias("_batch_ids"),
            F.array_sort(
                F.collect_set(F.when(off_month, F.date_format("_month", "yyyy-MM")))
            ).alias("_other_months"),
            F.slice(F.array_sort(F.collect_set(unparsed)), 1, UNPARSED_SHOWN).alias("_unparsed"),
            *per_rule,
        )
        .orderBy("source_file")
        .collect()
    )
    return tuple(
        FileCounts(
            row["source_file"],
            int(row["_rows"]),
            int(row["_bad"]),
            {r.name: int(row[r.name]) for r in rules},
            tuple(sorted(row["_batch_ids"])),
            tuple(row["_other_months"]),
            tuple(row["_unparsed"]),
        )
        for row in rows
    )


def unknown_value_hint(
    verdict: BatchVerdict, examples: Mapping[str, Sequence[str]], dataset: str
) -> str:
    """For each broken ``known_<column>`` rule, the values it met and the config key to extend.

    A value the config does not list is as often a new shop or region as a typo, and the fix
    of the first is the dataset config, not the data.
    """
    hints = []
    for rule, count in verdict.rule_counts().items():
        if not (count and rule.startswith(KNOWN_RULE_PREFIX)):
            continue
        column = rule.removeprefix(KNOWN_RULE_PREFIX)
        seen = ", ".join(repr(v) for v in examples.get(rule, ()))
        hints.append(
            f"{rule}: {column} values that dataset config {dataset!r} does not list"
            + (f" (e.g. {seen})" if seen else "")
            + f"; if they are real, add them to segment.known_values.{column} (or to the "
            f"members of the segment group made from {column}) and run again"
        )
    return "".join(f" {h}." for h in hints)


#: The rule of a landing file's last line without a line break.
CUT_RULE = "row_complete"


def cut_file_hint(verdict: BatchVerdict) -> str:
    """For files whose last row broke ``row_complete``: why, and how to land the row again."""
    cut = [f.source_file.rsplit("/", 1)[-1] for f in verdict.files if f.by_rule.get(CUT_RULE)]
    if not cut:
        return ""
    stem = cut[0].removesuffix(".csv")
    kept = "in quarantine" if verdict.passed else "to be quarantined once the batch passes"
    return (
        f" {CUT_RULE}: the last line of {', '.join(cut)} has no line break, so the file may "
        "have been cut short (a complete file ends with a line break): its last row may be cut "
        f"mid-value and rows after it may be missing. That row is bad, kept as it landed ({kept}); "
        "land it again, with any rows the file lost, in a correction file of the month (e.g. "
        f"{stem}_correction.csv, ending with a line break): the latest load wins in silver."
    )


#: A landing file's name: prefix, month, optional suffix (the report's advice reads it too).
LANDING_FILE_NAME = re.compile(r"^(.*)_([0-9]{4}-[0-9]{2})(_[^.]*)?[.]csv$")


def file_month_hint(verdict: BatchVerdict) -> str:
    """For files with rows of another month than the one the file is named for: which months,
    why those rows are not merged, and where to land them instead."""
    hints, example = [], ""
    for counts in verdict.files:
        found = LANDING_FILE_NAME.match(counts.source_file.rsplit("/", 1)[-1])
        if not counts.other_months or found is None:
            continue
        prefix, month, suffix = found.groups()
        broken = ", ".join(
            f"{rule} {counts.by_rule[rule]}"
            for rule in FILE_MONTH_RULES
            if counts.by_rule.get(rule)
        )
        hints.append(
            f"{found.group(0)} is the {'correction ' if suffix else ''}file of {month} but has "
            f"rows of {', '.join(counts.other_months[:5])} ({broken})"
        )
        example = example or f" (e.g. {prefix}_{counts.other_months[0]}_correction.csv)"
    if not hints:
        return ""
    return (
        f" Rows of another month: {'; '.join(hints)}. A month's file holds that month's rows "
        "(a correction file, <file_prefix>_<YYYY-MM>_<suffix>.csv, may also restate earlier "
        "months), so those rows are kept in quarantine, not merged as a restatement. Land "
        f"each in a correction file of its own month{example}: the latest load wins in silver."
    )


def month_parses_hint(verdict: BatchVerdict, config: DatasetConfig) -> str:
    """For files with rows whose month text does not parse: the file, the texts as landed,
    the format the dataset config expects, and how to land those rows again."""
    hints = []
    for counts in verdict.files:
        if not counts.by_rule.get(MONTH_PARSES):
            continue
        name = counts.source_file.rsplit("/", 1)[-1]
        found = LANDING_FILE_NAME.match(name)
        seen = ", ".join(repr(v) for v in counts.unparsed_months)
        hints.append(
            f"{name}: {counts.by_rule[MONTH_PARSES]} row(s)"
            + (f" with {config.month_column} {seen}" if seen else "")
            + (
                f" (correction file e.g. {found.group(1)}_{found.group(2)}_correction.csv)"
                if found
                else ""
            )
        )
    if not hints:
        return ""
    return (
        f" {MONTH_PARSES}: the {config.month_column} of rows does not parse as "
        f"{config.month_format!r} (month.format of dataset config {config.name!r}): "
        f"{'; '.join(hints)}. Those rows are kept as they landed in quarantine. Land them "
        f"again with {config.month_column} written as {config.month_format!r}, in a correction "
        "file of their month (<file_prefix>_<YYYY-MM>_correction.csv): the latest load wins "
        "in silver. If the source changed its month format for good, change month.format in "
        "the dataset config instead (rows already quarantined must still be landed again)."
    )


def gate_message(
    verdict: BatchVerdict,
    batch_ids: str,
    report: str,
    examples: Mapping[str, Sequence[str]] | None = None,
    dataset: str = "",
    hints: str = "",
) -> str:
    """The failure message: the share, the worst files with their rules and counts, the fix
    (for values the config does not list, which config key to extend); ``hints``: more rule
    hints to add (:func:`month_parses_hint`)."""
    worst = sorted(verdict.files, key=lambda f: f.bad, reverse=True)[:5]
    details = "; ".join(
        f"{f.source_file}: {f.bad} of {f.rows} rows bad ("
        + ", ".join(f"{rule} {n}" for rule, n in f.by_rule.items() if n)
        + ")"
        for f in worst
        if f.bad
    )
    # The smallest limit (in whole percent) that lets this batch through.
    needed = f"{min(1.0, math.ceil(round(verdict.bad_share * 100, 6)) / 100):g}"
    return (
        f"validate_data: {verdict.bad} of {verdict.rows} rows ({verdict.bad_share:.1%}) of "
        f"bronze batch(es) {batch_ids} broke the data-quality rules, more than the allowed "
        f"{verdict.max_bad_row_share:.1%} (max_bad_row_share). {details}."
        f"{unknown_value_hint(verdict, examples or {}, dataset)}{cut_file_hint(verdict)}"
        f"{file_month_hint(verdict)}{hints} "
        f"No table was changed and the batch will be judged again on the next run, as it "
        f"is: its rows are in bronze, so correcting or replacing the landing file does not "
        f"change the verdict. "
        f"To go on, raise the bundle variable max_bad_row_share for one run to quarantine "
        f"these rows (locally "
        f"`demand-forecasting run monthly --var max_bad_row_share={needed}`; on Databricks "
        f"deploy with `--var max_bad_row_share={needed}`, run, and deploy again without it), then "
        f"land corrected rows in a new file (the latest load wins in silver). "
        f"Results: {report}"
    )


def run(ctx: RunContext, cfg: ValidateConfig) -> ValidationRun:
    """Judge every new bronze batch; return the verdicts (none when no rows are new).

    Raises:
        DataQualityGateError: a batch's bad share exceeds the limit (nothing written).
        SuiteMismatchError: GE and the Spark rules disagree (nothing written).
    """
    config = cfg.dataset
    bronze = ctx.table(names.BRONZE)
    if not ctx.tables.exists(bronze):
        log.info("validate_data: %s does not exist yet (nothing ingested); nothing to do", bronze)
        return ValidationRun(())
    checkpoint = ctx.volume_path(names.CHECKPOINT_VOLUME, names.VALIDATED)
    folder = ctx.tables.local_folder(bronze)
    if folder is not None and delta_source_caught_up(checkpoint, folder):
        log.info("validate_data: the checkpoint has every bronze version; no query started")
        ctx.task_values.set("rows_accepted", 0)
        ctx.task_values.set("rows_quarantined", 0)
        return ValidationRun(())
    run_month = cfg.run_month or _month_of(ctx.clock())
    rules = build_rules(config, run_month)
    verdicts: list[BatchVerdict] = []
    import_in_background()  # seconds of Python imports, overlapping the stream's start

    first_load = ctx.first_local_load(names.VALIDATED)

    def judge_batch(batch: DataFrame, batch_id: int) -> None:
        app_id = checkpoint_query_id(checkpoint)
        # The batch's queries run in the stream's own session (a clone of ctx.spark).
        with generated_code(batch.sparkSession) if first_load else nullcontext():
            verdicts.append(_judge_and_write(ctx, cfg, rules, run_month, batch, batch_id, app_id))

    run_available_now(
        ctx.tables.read_stream(bronze), judge_batch, checkpoint, f"validate_{config.name}"
    )
    done = ValidationRun(tuple(verdicts))
    if not verdicts:
        log.info("validate_data: no new bronze rows; nothing judged, no table changed")
    ctx.task_values.set("rows_accepted", done.rows_out)
    ctx.task_values.set("rows_quarantined", done.rows_quarantined)
    return done


def _judge_and_write(
    ctx: RunContext,
    cfg: ValidateConfig,
    rules: list[Rule],
    run_month: date,
    batch: DataFrame,
    batch_id: int,
    app_id: str,
) -> BatchVerdict:
    config = cfg.dataset
    columns = bronze_columns(config)
    if LINE_TERMINATED not in batch.columns:  # bronze written before the column existed
        batch = batch.withColumn(LINE_TERMINATED, F.lit(None).cast("boolean"))
    judged = judge(batch.select(*columns), config, rules).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        verdict = BatchVerdict(
            file_counts(judged, rules, config.month_column), cfg.max_bad_row_share
        )
        bronze_batches = verdict.bronze_batches()
        suite = run_suite(judged, rules, columns, f"{config.name}_bronze", verdict.rows)
        report = _save_report(ctx, cfg, run_month, batch_id, bronze_batches, verdict, suite)
        check_agreement(suite, verdict.rule_counts())
        _log_summary(verdict, suite, bronze_batches, report)
        parse_hint = month_parses_hint(verdict, config)
        if verdict.passed and (
            hint := cut_file_hint(verdict) + file_month_hint(verdict) + parse_hint
        ):
            log.warning("validate_data:%s", hint)
        if not verdict.passed:
            raise DataQualityGateError(
                gate_message(
                    verdict, bronze_batches, report, suite.examples, config.name, parse_hint
                )
            )
        validated_at = F.lit(ctx.clock()).cast("timestamp")
        if verdict.bad:
            # mergeSchema: a quarantine table written before line_terminated existed gets it.
            append_once(
                ctx.tables,
                quarantined_rows(judged, columns, validated_at),
                ctx.table(names.QUARANTINE),
                app_id,
                batch_id,
                merge_schema=True,
            )
        if verdict.rows > verdict.bad:
            append_once(
                ctx.tables,
                accepted_rows(judged, config),
                ctx.table(names.VALIDATED),
                app_id,
                batch_id,
            )
        return verdict
    finally:
        judged.unpersist()


def _save_report(
    ctx: RunContext,
    cfg: ValidateConfig,
    run_month: date,
    batch_id: int,
    bronze_batches: str,
    verdict: BatchVerdict,
    suite: SuiteResult,
) -> str:
    stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
    path = Path(
        ctx.volume_path(
            names.QUALITY_VOLUME, cfg.dataset.name, f"validation_{stamp}_batch{batch_id}.json"
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "dataset": cfg.dataset.name,
        "run_month": f"{run_month:%Y-%m}",
        "validation_batch_id": batch_id,
        "bronze_batch_ids": bronze_batches,
        "rows": verdict.rows,
        "accepted": verdict.rows - verdict.bad,
        "quarantined": verdict.bad,
        "bad_share": verdict.bad_share,
        "max_bad_row_share": verdict.max_bad_row_share,
        "passed": verdict.passed,
        "rule_counts": verdict.rule_counts(),
        "files": [
            {
                "source_file": f.source_file,
                "rows": f.rows,
                "bad": f.bad,
                "by_rule": {k: v for k, v in f.by_rule.items() if v},
            }
            for f in verdict.files
        ],
        "great_expectations": {
            "engine": suite.engine,
            "success": suite.success,
            "statistics": suite.statistics,
            "result": suite.result_json,
        },
    }
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return str(path)


def _log_summary(
    verdict: BatchVerdict, suite: SuiteResult, bronze_batches: str, report: str
) -> None:
    broken = ", ".join(f"{r} {n}" for r, n in verdict.rule_counts().items() if n) or "none"
    stats = suite.statistics
    log.info(
        "validate_data: bronze batch(es) %s: %d rows from %d file(s): %d accepted, %d "
        "quarantined (%.2f%%, limit %.2f%%); rules broken: %s; GE suite (%s): %s of %s "
        "expectations met; results: %s",
        bronze_batches,
        verdict.rows,
        len(verdict.files),
        verdict.rows - verdict.bad,
        verdict.bad,
        100 * verdict.bad_share,
        100 * verdict.max_bad_row_share,
        broken,
        suite.engine,
        stats.get("successful_expectations"),
        stats.get("evaluated_expectations"),
        report,
    )


def _month_of(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The validate task's own options."""
    parser.add_argument(
        "--dataset",
        default="aus_retail",
        help="dataset config name or YAML path (bundle variable `dataset`)",
    )
    parser.add_argument(
        "--max-bad-row-share",
        type=float,
        default=0.05,
        help="fail when more than this share of a batch is bad "
        "(bundle variable `max_bad_row_share`)",
    )
    parser.add_argument(
        "--run-month",
        type=parse_month,
        metavar="YYYY-MM",
        help="rows dated after this month are bad (default: this month)",
    )


def make_config(args: argparse.Namespace) -> ValidateConfig:
    """Typed config from the parsed options."""
    return ValidateConfig(load_dataset_config(args.dataset), args.max_bad_row_share, args.run_month)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``df-validate-data``."""
    run_task(
        "validate_data",
        "Judge new bronze rows; quarantine the bad, pass on the good.",
        add_arguments,
        make_config,
        run,
        argv,
    )
