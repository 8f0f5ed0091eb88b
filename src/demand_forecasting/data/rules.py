"""Row-level data-quality rules, derived from the dataset config, as Spark column expressions.

Each :class:`Rule` says when a bronze row breaks it (a boolean :class:`~pyspark.sql.Column`,
never null) and names the Great Expectations expectation that states the same rule over the
batch. The quality gate quarantines rows by the Spark expressions and runs the expectations as
the suite of record; a rule whose row count differs from its expectation's unexpected count is
a bug and stops the run (see :mod:`demand_forecasting.data.expectations`).

A rule judges only what it is about: a null month breaks ``not_null_month`` and no month rule,
an unparseable number breaks ``<target>_is_number`` and not the range rule (GE's column-value
expectations skip nulls in the same way).

The judged frame keeps every bronze column and adds columns prefixed ``_`` (canonical names
never start with one): ``_text_<column>`` for each canonical column (trimmed, blank as null),
``_y`` and ``_num_<exog>`` (double), ``_month`` (date), ``_month_offset`` (seconds after the
first of the month), ``_series_id``, ``_segment``, ``_months_after_file`` (months from the month
in the landing file's name to ``_month``; null for a file not named by month),
``_months_after_plain_file`` (the same for a plain month file ``<prefix>_<YYYY-MM>.csv``; null
for a suffixed one such as a correction) and ``_failed_rules`` (the names of the rules the row
breaks, in suite order).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from demand_forecasting.data.config import (
    ANY_MONTH_NAME,
    SEGMENT_SEPARATOR,
    SERIES_KEY_SEPARATOR,
    DatasetConfig,
    month_name_rewrites,
    numeric_month_pattern,
    reads_month_names,
)

#: Rules ``known_<column>``: a segment column's value is one the dataset config lists.
KNOWN_RULE_PREFIX = "known_"
#: A plain decimal number, optionally signed and with an exponent (no NaN, no Infinity, no
#: thousands separators). Both Spark (``rlike``) and GE (``match_regex``) apply it.
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?$"
#: The largest finite double: the target must be at most this (so never infinite).
MAX_DOUBLE = sys.float_info.max
#: The bronze column holding what the CSV reader could not parse into the schema.
RESCUED = "_rescued_data"
#: The bronze column saying whether the row's line ended with a line break: false only for
#: the last line of a landing file that does not end with one (a file cut short, possibly
#: mid-number); null for rows ingested before the column existed (not judged).
LINE_TERMINATED = "line_terminated"
FAILED_RULES = "_failed_rules"
#: What a month name format reads, in the ``month_parses`` rule's description.
NAMES_READ = " (an English month name, any case: Jul or July; Sep, Sept or September)"
#: The rules of a row whose month is not its landing file's (see ``_file_month_rules``).
FILE_MONTH_RULES = ("month_not_after_file_month", "month_not_before_file_month")


@dataclass(frozen=True)
class Rule:
    """One data-quality rule: its Spark test per row and its GE expectation over the batch."""

    name: str
    description: str
    #: True when a row breaks the rule (over the judged frame; never null).
    failed: Column
    #: Class name in ``great_expectations.expectations`` and its keyword arguments.
    expectation: str
    expectation_kwargs: dict[str, Any] = field(default_factory=dict)


def slug_column(column: Column) -> Column:
    """Spark twin of :func:`demand_forecasting.data.config.slugify`."""
    dashed = F.regexp_replace(F.lower(column), "[^a-z0-9]+", "_")
    return F.regexp_replace(dashed, "^_+|_+$", "")


def text(column: str) -> str:
    """The judged frame's trimmed-text column of canonical column ``column``."""
    return f"_text_{column}"


def number(column: str) -> str:
    """The judged frame's double column of exogenous column ``column``."""
    return f"_num_{column}"


def clean_text(column: str) -> Column:
    """Trimmed text, blank as null."""
    trimmed = F.trim(F.col(column))
    return F.when(trimmed != "", trimmed)


def add_typed_columns(bronze: DataFrame, config: DatasetConfig) -> DataFrame:
    """Add the ``_``-prefixed typed columns the rules and the suite read (pure)."""
    cleaned = bronze.select("*", *[clean_text(c).alias(text(c)) for c in config.canonical_columns])
    stamp = month_stamp(config)
    numbers = [config.target, *config.exogenous]
    typed = cleaned.select(
        "*",
        *[parsed_number(text(c)).alias("_y" if c == config.target else number(c)) for c in numbers],
        F.to_date(stamp).alias("_month"),
        month_offset_column(stamp).alias("_month_offset"),
    )
    month, file_month = F.col("_month"), file_month_column(config)
    months_after_file = (F.year(month) - F.year(file_month)) * 12 + (
        F.month(month) - F.month(file_month)
    )
    return typed.select(
        "*",
        series_id_column(config).alias("_series_id"),
        segment_column(config).alias("_segment"),
        months_after_file.alias("_months_after_file"),
        F.when(plain_month_file_column(config), months_after_file).alias(
            "_months_after_plain_file"
        ),
    )


def month_offset_column(stamp: Column) -> Column:
    """Seconds from the first of the month to the parsed month ``stamp`` (0 on the grain)."""
    return F.unix_timestamp(stamp) - F.unix_timestamp(F.date_trunc("month", stamp))


def month_stamp(config: DatasetConfig) -> Column:
    """The month text (``_text_<month column>``) parsed with the configured format; null when
    it does not parse.

    A format with a month name (``MMM``, ``MMMM``) reads the names landing reads
    (:data:`~demand_forecasting.data.config.MONTH_NAMES`, any case, ``Sept`` too): the name
    becomes its number by the same regexes, then the text parses with ``MM``. Spark's own
    ``MMM`` reads only ``Sep``, so a ``1991 Sept`` would be quarantined here yet landed.
    """
    month_text = F.col(text(config.month_column))
    if not reads_month_names(config.month_format):
        return F.try_to_timestamp(month_text, F.lit(config.month_format))
    as_number = month_text
    for name, number in month_name_rewrites():
        as_number = F.regexp_replace(as_number, name, number)
    # A text without a name ("1991 07") is not in a name format: it does not parse.
    named = F.when(month_text.rlike(ANY_MONTH_NAME), as_number)
    return F.try_to_timestamp(named, F.lit(numeric_month_pattern(config.month_format)))


def with_series_and_month(rows: DataFrame, config: DatasetConfig) -> DataFrame:
    """Rows as they landed (bronze's, quarantine's) with ``_series_id`` and ``_month`` parsed as
    validation parses them (pure); null where the series id or the month does not parse."""
    ids = [config.series_id] if config.series_id else list(config.series_keys)
    columns = list(dict.fromkeys([*ids, config.month_column]))
    cleaned = rows.select("*", *[clean_text(c).alias(text(c)) for c in columns])
    return cleaned.select(
        "*",
        series_id_column(config).alias("_series_id"),
        F.to_date(month_stamp(config)).alias("_month"),
    )


def file_month_column(config: DatasetConfig) -> Column:
    """The month in the row's landing file name (``<file_prefix>_<YYYY-MM>[_<suffix>].csv``),
    or null for a file named otherwise."""
    pattern = rf"/{re.escape(config.file_prefix)}_([0-9]{{4}}-[0-9]{{2}})(_[^/.]*)?[.]csv$"
    found = F.regexp_extract(F.col("source_file"), pattern, 1)
    return F.when(found != "", F.to_date(F.concat(found, F.lit("-01"))))


def plain_month_file_column(config: DatasetConfig) -> Column:
    """Whether the row's landing file is a plain month file ``<file_prefix>_<YYYY-MM>.csv``
    (no suffix: not a correction)."""
    pattern = rf"/{re.escape(config.file_prefix)}_[0-9]{{4}}-[0-9]{{2}}[.]csv$"
    return F.col("source_file").rlike(pattern)


def series_id_column(config: DatasetConfig) -> Column:
    """The series id: the id column, or the series keys joined (null if any key is null)."""
    if config.series_id:
        return F.col(text(config.series_id))
    keys = [F.col(text(k)) for k in config.series_keys]
    all_present = reduce(lambda a, b: a & b, [k.isNotNull() for k in keys])
    return F.when(all_present, F.concat_ws(SERIES_KEY_SEPARATOR, *keys))


def segment_column(config: DatasetConfig) -> Column:
    """The segment name (slugged keys joined by ``__``); null if a key is missing or unknown."""
    grouped = {g.name: g for g in config.groups}
    parts = []
    for key in config.segment_keys:
        if key in grouped:
            pairs = [F.lit(v) for item in grouped[key].group_of().items() for v in item]
            parts.append(F.create_map(*pairs)[F.col(text(grouped[key].source))])
        else:
            known = config.known_values[key]
            value = F.col(text(key))
            parts.append(F.when(value.isin(*known), value))
    all_present = reduce(lambda a, b: a & b, [p.isNotNull() for p in parts])
    return F.when(all_present, F.concat_ws(SEGMENT_SEPARATOR, *[slug_column(p) for p in parts]))


def build_rules(config: DatasetConfig, run_month: date) -> list[Rule]:
    """The rules of ``config`` in suite order (the first failed rule is a row's reason).

    Args:
        config: the dataset config the rules come from.
        run_month: first day of the run's month; rows dated after it break
            ``month_not_after_run_month``.
    """
    rules = [
        # First: a cut line may also fail to split, but the cut is the cause to fix.
        Rule(
            "row_complete",
            "the row's line ends with a line break (the file's last line has none: the file "
            "may be cut short)",
            F.col(LINE_TERMINATED) == F.lit(False),
            "ExpectColumnValuesToNotBeInSet",
            {"column": LINE_TERMINATED, "value_set": [False]},
        ),
        row_parses_rule(),
    ]
    rules += [not_null_rule(column) for column in config.required_columns]
    rules += [is_number_rule(column) for column in (config.target, *config.exogenous)]
    rules += _target_and_month_rules(config, run_month)
    for column, values in config.value_domains().items():
        value = F.col(text(column))
        rules.append(
            Rule(
                f"{KNOWN_RULE_PREFIX}{column}",
                f"{column} is one of the {len(values)} values the config lists",
                value.isNotNull() & ~value.isin(*values),
                "ExpectColumnValuesToBeInSet",
                {"column": text(column), "value_set": list(values)},
            )
        )
    rules.append(unique_series_month_rule())
    return [_never_null(r) for r in rules]


def _target_and_month_rules(config: DatasetConfig, run_month: date) -> list[Rule]:
    y, month = F.col("_y"), F.col("_month")
    return [
        Rule(
            f"{config.target}_in_range",
            f"{config.target} is >= 0 and finite",
            y.isNotNull() & ~((y >= 0) & (y <= MAX_DOUBLE)),
            "ExpectColumnValuesToBeBetween",
            {"column": "_y", "min_value": 0, "max_value": MAX_DOUBLE},
        ),
        *month_rules(config),
        Rule(
            "month_not_after_run_month",
            f"the month is not after the run month {run_month:%Y-%m}",
            month.isNotNull() & (month > F.lit(run_month)),
            "ExpectColumnValuesToBeBetween",
            {"column": "_month", "max_value": run_month},
        ),
        *_file_month_rules(),
    ]


def _file_month_rules() -> list[Rule]:
    # A landing file named for a month holds that month's rows. One mistyped future month
    # would otherwise become the newest month of its series, and drift, training and scoring
    # would take it for the run month. An earlier month's row in a plain month file would
    # silently restate that month: restating is what a correction file (a suffixed name) is
    # for, so only there may rows of earlier months come.
    after, after_plain = F.col("_months_after_file"), F.col("_months_after_plain_file")
    return [
        Rule(
            FILE_MONTH_RULES[0],
            "the month is not after the month its landing file is named for",
            after.isNotNull() & (after > 0),
            "ExpectColumnValuesToBeBetween",
            {"column": "_months_after_file", "max_value": 0},
        ),
        Rule(
            FILE_MONTH_RULES[1],
            "in a plain month file (<file_prefix>_<YYYY-MM>.csv) the month is not before the "
            "file's month (an earlier month is restated in a correction file of that month)",
            after_plain.isNotNull() & (after_plain < 0),
            "ExpectColumnValuesToBeBetween",
            {"column": "_months_after_plain_file", "min_value": 0},
        ),
    ]


def row_parses_rule() -> Rule:
    """``row_parses``: the CSV line split into the header's columns (nothing rescued)."""
    return Rule(
        "row_parses",
        "the CSV line splits into exactly the header's columns",
        F.col(RESCUED).isNotNull(),
        "ExpectColumnValuesToBeNull",
        {"column": RESCUED},
    )


def not_null_rule(column: str) -> Rule:
    """``not_null_<column>``: the canonical column's text is not empty."""
    return Rule(
        f"not_null_{column}",
        f"{column} is present (not empty)",
        F.col(text(column)).isNull(),
        "ExpectColumnValuesToNotBeNull",
        {"column": text(column)},
    )


def is_number_rule(column: str) -> Rule:
    """``<column>_is_number``: the text, if any, is a plain decimal number."""
    value = F.col(text(column))
    return Rule(
        f"{column}_is_number",
        f"{column} is a plain decimal number",
        value.isNotNull() & ~value.rlike(NUMBER_PATTERN),
        "ExpectColumnValuesToMatchRegex",
        {"column": text(column), "regex": NUMBER_PATTERN},
    )


def month_rules(config: DatasetConfig) -> list[Rule]:
    """``month_parses`` and ``month_on_grain`` over ``_month`` and ``_month_offset``
    (:func:`month_offset_column`)."""
    month, offset = F.col("_month"), F.col("_month_offset")
    return [
        Rule(
            "month_parses",
            f"{config.month_column} parses as {config.month_format}"
            + (NAMES_READ if reads_month_names(config.month_format) else ""),
            F.col(text(config.month_column)).isNotNull() & month.isNull(),
            "ExpectColumnValuesToNotBeNull",
            {
                "column": "_month",
                "row_condition": {
                    "type": "nullity",
                    "column": {"name": text(config.month_column)},
                    "is_null": False,
                },
            },
        ),
        Rule(
            "month_on_grain",
            "the month is the first day of a month at 00:00",
            offset.isNotNull() & (offset != 0),
            "ExpectColumnValuesToBeBetween",
            {"column": "_month_offset", "min_value": 0, "max_value": 0},
        ),
    ]


def unique_series_month_rule(kind: str = "landing file") -> Rule:
    # Per file: a file that says two things of one series and month is ambiguous. Across the
    # files of a batch (an original and its correction landed before the month ran, or a
    # correction of a later month restating an earlier one) each row is valid, and silver
    # keeps the one of the file that sorts last (silver.latest_load_wins), as it keeps a later
    # batch's.
    key = Window.partitionBy("_series_id", "_month", "source_file")
    present = F.col("_series_id").isNotNull() & F.col("_month").isNotNull()
    return Rule(
        "unique_series_month",
        f"one row per series and month in a {kind} (all copies fail)",
        present & (F.count(F.lit(1)).over(key) > 1),
        "ExpectCompoundColumnsToBeUnique",
        {
            "column_list": ["_series_id", "_month", "source_file"],
            "ignore_row_if": "any_value_is_missing",
        },
    )


def _never_null(rule: Rule) -> Rule:
    return Rule(
        rule.name,
        rule.description,
        F.coalesce(rule.failed, F.lit(False)),
        rule.expectation,
        rule.expectation_kwargs,
    )


def parsed_number(column: str) -> Column:
    """The text column ``column`` as a double; null unless it is a plain decimal number."""
    text = F.col(column)
    return F.when(text.rlike(NUMBER_PATTERN), text.try_cast("double"))


def judge(bronze: DataFrame, config: DatasetConfig, rules: list[Rule]) -> DataFrame:
    """Bronze rows with typed columns and ``_failed_rules`` (empty when the row is good)."""
    typed = add_typed_columns(bronze, config)
    flags = F.array(*[F.when(r.failed, F.lit(r.name)) for r in rules])
    return typed.withColumn(FAILED_RULES, F.filter(flags, lambda name: name.isNotNull()))


def accepted_rows(judged: DataFrame, config: DatasetConfig) -> DataFrame:
    """The good rows in the canonical, typed shape of the validated table (pure)."""
    keys = list(dict.fromkeys([*config.series_keys, *config.segment_attributes]))
    return judged.where(F.size(FAILED_RULES) == 0).select(
        F.col("_series_id").alias("series_id"),
        *[F.col(text(k)).alias(k) for k in keys],
        F.col("_segment").alias("segment"),
        F.col("_month").alias("month"),
        F.col("_y").alias("y"),
        *[F.col(number(c)).alias(c) for c in config.exogenous],
        "batch_id",
        "source_file",
        "load_time",
    )


def quarantined_rows(
    judged: DataFrame, bronze_columns: list[str], validated_at: Column
) -> DataFrame:
    """The bad rows as they landed, with the first failed rule, all of them and when (pure)."""
    return judged.where(F.size(FAILED_RULES) > 0).select(
        *bronze_columns,
        F.col(FAILED_RULES)[0].alias("failed_rule"),
        F.col(FAILED_RULES).alias("failed_rules"),
        validated_at.alias("validated_at"),
    )
