"""The Quartz cron validator accepts what Quartz accepts and names what it rejects."""

from __future__ import annotations

import pytest

from demand_forecasting.bundle_checks.quartz import validate_quartz


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 6 5 * ?",  # 06:00 on the 5th of every month
        "0 0 6 ? * MON-FRI",
        "0 15 10 L * ?",  # last day of the month
        "0 15 10 L-3 * ?",
        "0 15 10 15W * ?",  # nearest weekday to the 15th
        "0 15 10 LW * ?",
        "0 15 10 ? * 6L",  # last Friday
        "0 15 10 ? * 6#3",  # third Friday
        "0 15 10 ? * FRI#3",
        "0 0/5 14,18 * * ?",
        "0 0 12 1/5 * ? 2030",
        "0 0 6 ? JAN-DEC SUN",
        "*/30 * * ? * *",
    ],
)
def test_valid_expressions(expression: str) -> None:
    assert validate_quartz(expression) == []


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 0 6 5 *", "has 5 fields"),  # Unix cron, not Quartz
        ("0 0 6 5 * * 2030 1", "has 8 fields"),
        ("0 0 6 5 * *", "both set"),  # needs '?' in one day field
        ("0 0 6 ? * ?", "both '?'"),
        ("0 0 24 5 * ?", "hours '24': 24 is outside 0-23"),
        ("60 0 6 5 * ?", "seconds '60'"),
        ("0 0 6 32 * ?", "day-of-month '32'"),
        ("0 0 6 5 13 ?", "month '13'"),
        ("0 0 6 ? * 8", "day-of-week '8'"),
        ("0 0 6 ? * MONX", "'MONX' is not a value of day-of-week"),
        ("0 0 6 ? FOO *", "'FOO' is not a value of month"),
        ("0 */0 6 5 * ?", "step '/0' must be a positive number"),
        ("0 0 6 5 * ? 1969", "year '1969'"),
        ("? 0 6 5 * ?", "'?' is only allowed in day-of-month or day-of-week"),
        ("0 0 6 ? * 6#6", "week of the month must be 1-5"),
        ("0 0 6 L-31 * ?", "offset from the last day must be 0-30"),
        ("0 0 6 5,,6 * ?", "empty list item"),
    ],
)
def test_invalid_expressions_name_the_field_and_rule(expression: str, problem: str) -> None:
    problems = validate_quartz(expression)
    assert problems, f"{expression!r} was accepted"
    assert any(problem in p for p in problems), problems
