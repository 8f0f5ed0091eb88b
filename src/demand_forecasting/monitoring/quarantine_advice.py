"""What to land for quarantined rows, by the rule they broke (pure; the run report says it).

Quarantined rows stay in the quarantine table as they landed; a row is mended by landing it
again, right, in a *correction file* (``<file_prefix>_<YYYY-MM>_<suffix>.csv``), whose
rows silver takes over earlier loads (latest load wins). A correction file of a month may hold
that month and earlier ones, never a later one (``month_not_after_file_month``), so which
month's correction file to use depends on the rule: most rows belong to the month of the file
they came in, but a row of an earlier month in a plain month file
(``month_not_before_file_month``) belongs to a correction file of *its own* month. The rules
are :func:`demand_forecasting.data.rules.build_rules`; ``docs/data_pipeline.md`` lists them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from demand_forecasting.data.validate import LANDING_FILE_NAME

#: The rule whose rows belong to a correction file of their own month.
EARLIER_MONTH_RULE = "month_not_before_file_month"


def correction_file(file_name: str, month: str | None = None) -> str:
    """The correction file of ``month`` (default: the month ``file_name`` is named for) with
    the prefix of ``file_name``; a placeholder name for a file not named by month."""
    found = LANDING_FILE_NAME.match(file_name)
    if found is None:
        return f"<file_prefix>_{month or '<YYYY-MM>'}_correction.csv"
    return f"{found.group(1)}_{month or found.group(2)}_correction.csv"


def _of_files_month(files: Sequence[str]) -> str:
    example = f" (e.g. `{correction_file(files[0])}`)" if files else ""
    return f"in a correction file of the month of the file they came in{example}"


def rule_advice(
    rule: str,
    files: Sequence[str],
    row_months: Mapping[str, Sequence[str]] | None = None,
    month_format: str | None = None,
) -> str:
    """What to do about rows that broke ``rule``.

    Args:
        rule: the rule's name (``failed_rule``).
        files: the landing files (base names) with such rows.
        row_months: ``{file: [YYYY-MM, ...]}``, the months of the ``month_not_before_file_month``
            rows of each file (None or missing: not known, the advice says so generally).
        month_format: the dataset's ``month.format`` (None: not known).
    """
    fix = _of_files_month(files)
    if rule == EARLIER_MONTH_RULE:
        return _earlier_month_advice(files, row_months or {})
    if rule == "row_complete":
        return (
            "the file's last line has no line break, so the file may have been cut short: land "
            f"that row again, with any rows the file lost, {fix}, ending with a line break"
        )
    if rule == "row_parses":
        return (
            "the line does not split into the header's columns (a stray delimiter or quote): "
            f"land it again, fixed, {fix}"
        )
    if rule == "month_parses":
        expected = (
            f"`{month_format}` (the dataset's month.format)"
            if month_format
            else "the dataset's month.format"
        )
        return (
            f"the month text does not parse as {expected}: land the rows with the month "
            f"written so {fix}; if the source changed its format for good, change month.format "
            "in the dataset config too"
        )
    if rule == "month_on_grain":
        return f"the month is not the first day of a month: land the rows dated so {fix}"
    if rule == "month_not_after_run_month":
        return (
            "the month is after the run month: a mistyped month is landed right "
            f"{fix}; a row that really is of that later month is landed in that month's file "
            "when the month is run"
        )
    if rule == "month_not_after_file_month":
        return (
            "the month is after the month the file is named for: a mistyped month is landed "
            f"right {fix}; a row that really is of that later month belongs in that month's "
            "own file (a correction file holds its month and earlier ones only)"
        )
    if rule == "unique_series_month":
        return (
            "the file has a series and month more than once (every copy is quarantined): land "
            f"the one right row {fix}"
        )
    if rule.startswith("known_"):
        column = rule.removeprefix("known_")
        return (
            f"{column} has a value the dataset config does not list: if it is real, add it to "
            f"segment.known_values.{column} (or to its segment group's members) first; then, "
            f"or if it was a typo, land the rows again {fix} (quarantined rows are not judged "
            "again)"
        )
    if rule.startswith("not_null_"):
        column = rule.removeprefix("not_null_")
        return f"{column} is empty: land the rows with {column} filled {fix}"
    if rule.endswith("_is_number"):
        column = rule.removesuffix("_is_number")
        return (
            f"{column} is not a plain decimal number (no thousands separator, decimal comma or "
            f"n/a): land the rows with the number written plainly {fix}"
        )
    if rule.endswith("_in_range"):
        column = rule.removesuffix("_in_range")
        return f"{column} is negative or not finite: land the right value {fix}"
    return f"land the rows again, fixed, {fix}"


def _earlier_month_advice(files: Sequence[str], row_months: Mapping[str, Sequence[str]]) -> str:
    """A plain month file's rows of earlier months go to correction files of *their* months:
    one of the file's own month would hold them no better (the rows would restate an earlier
    month from a file that is not about it)."""
    named = [
        f"`{file}` has rows of {', '.join(row_months[file])}: land them in "
        + ", ".join(f"`{correction_file(file, month)}`" for month in row_months[file])
        for file in files
        if row_months.get(file)
    ]
    return (
        "a plain month file holds rows of an earlier month, which only a correction file "
        "may restate: land each row in a correction file of the row's own month "
        "(`<file_prefix>_<row's YYYY-MM>_correction.csv`), not of the file's"
        + (": " + "; ".join(named) if named else "")
    )


def advice_lines(
    quarantine_files: Sequence[Mapping[Any, object]],
    row_months: Mapping[str, Sequence[str]] | None = None,
    month_format: str | None = None,
) -> list[str]:
    """One Markdown bullet per rule broken in ``quarantine_files`` (the report's rows:
    ``source_file, rows, [corrected,] rules``), files whose rows were all corrected left
    out; empty when nothing needs landing."""
    by_rule: dict[str, list[str]] = {}
    for record in quarantine_files:
        corrected = record.get("corrected")
        if corrected is not None and corrected == record.get("rows"):
            continue
        for rule in str(record.get("rules") or "").split(", "):
            if rule:
                by_rule.setdefault(rule, []).append(str(record["source_file"]))
    return [
        f"- `{rule}`: {rule_advice(rule, files, row_months, month_format)}."
        for rule, files in sorted(by_rule.items())
    ]
