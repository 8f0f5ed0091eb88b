"""Validate Quartz cron expressions, the syntax of ``schedule.quartz_cron_expression``.

Quartz (which Databricks Jobs use) differs from Unix cron: six or seven fields
(``seconds minutes hours day-of-month month day-of-week [year]``), days of the week 1-7 with
1 = Sunday, and exactly one of day-of-month and day-of-week must be ``?``. Special forms:
``L``, ``L-n``, ``W``, ``LW`` in day-of-month; ``L``, ``nL`` and ``n#k`` in day-of-week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def number(self, text: str) -> int | None:
        """The value of one token (a number or a name), or None if it is neither."""
        upper = text.upper()
        if upper in self.names:
            return self.names.index(upper) + self.low
        return int(text) if text.isdigit() else None


FIELDS = (
    _Field("seconds", 0, 59),
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 1, 7, DAYS),
    _Field("year", 1970, 2099),
)
_DOM, _DOW = 3, 5
_DOM_SPECIAL = re.compile(r"^(?:L(?:-([0-9]{1,2}))?|LW|([0-9]{1,2})W)$")
_DOW_SPECIAL = re.compile(r"^(?:([A-Za-z]{3}|[0-9])L|([A-Za-z]{3}|[0-9])#([0-9]+)|L)$")


def validate_quartz(expression: str) -> list[str]:
    """Every problem with a Quartz cron expression (an empty list if it is valid).

    Args:
        expression: e.g. ``"0 0 6 5 * ?"`` (06:00:00 on the 5th of every month).

    Returns:
        Human-readable problems, each naming the field and the rule it breaks.
    """
    parts = expression.split()
    if len(parts) not in (6, 7):
        return [
            f"has {len(parts)} fields; Quartz needs 6 or 7 (seconds minutes hours "
            "day-of-month month day-of-week [year])"
        ]
    problems: list[str] = []
    for index, (text, field) in enumerate(zip(parts, FIELDS, strict=False)):
        problems += [f"{field.name} '{text}': {p}" for p in _validate_field(text, field, index)]
    dom, dow = parts[_DOM], parts[_DOW]
    if dom == "?" and dow == "?":
        problems.append("day-of-month and day-of-week are both '?'; exactly one must be '?'")
    elif dom != "?" and dow != "?":
        problems.append(
            f"day-of-month '{dom}' and day-of-week '{dow}' are both set; Quartz needs '?' in "
            "one of them (e.g. '0 0 6 5 * ?' for the 5th of every month)"
        )
    return problems


def _validate_field(text: str, field: _Field, index: int) -> list[str]:
    if text == "?":
        if index in (_DOM, _DOW):
            return []
        return ["'?' is only allowed in day-of-month or day-of-week"]
    problems: list[str] = []
    for item in text.split(","):
        if not item:
            problems.append("empty list item")
            continue
        problems += _validate_item(item, field, index)
    return problems


def _validate_item(item: str, field: _Field, index: int) -> list[str]:
    if index == _DOM and (match := _DOM_SPECIAL.match(item)):
        offset, day = match.groups()
        if offset is not None and int(offset) > 30:
            return [f"'L-{offset}': the offset from the last day must be 0-30"]
        if day is not None and not 1 <= int(day) <= 31:
            return [f"'{day}W': the day must be 1-31"]
        return []
    if index == _DOW and (match := _DOW_SPECIAL.match(item)):
        last, nth_day, nth = match.groups()
        day = last or nth_day
        if day is not None and field.number(day) not in range(1, 8):
            return [f"'{day}' is not a day of the week (1-7 or SUN-SAT)"]
        if nth is not None and not 1 <= int(nth) <= 5:
            return [f"'#{nth}': the week of the month must be 1-5"]
        return []
    base, slash, step = item.partition("/")
    problems: list[str] = []
    if slash:
        if not step.isdigit() or int(step) == 0:
            problems.append(f"step '/{step}' must be a positive number")
        elif int(step) > field.high:
            problems.append(f"step '/{step}' is larger than the field's maximum {field.high}")
    if base == "*" or (slash and base == ""):
        return problems
    low_text, dash, high_text = base.partition("-")
    for token in (low_text, high_text) if dash else (low_text,):
        value = field.number(token)
        if value is None:
            allowed = f"{field.low}-{field.high}" + (
                f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
            )
            problems.append(f"'{token}' is not a value of {field.name} ({allowed})")
        elif not field.low <= value <= field.high:
            problems.append(f"{value} is outside {field.low}-{field.high}")
    return problems
