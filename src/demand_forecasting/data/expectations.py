"""The Great Expectations suite of record: the same rules as the Spark expressions, run by GE.

The suite is built from the rules (one expectation per rule) plus a table-level expectation
that the batch has every bronze column. GE runs it over the whole judged batch, on pandas
(batches up to :data:`PANDAS_MAX_ROWS` rows: one Arrow transfer, then about a second) or on
Spark's own engine (bigger batches: no driver memory spike, about a second per expectation).
Its unexpected count for each rule must equal the number of rows the Spark expression
failed; otherwise the two disagree about what a rule means and the run stops
(:class:`SuiteMismatchError`), so the quarantine never silently drifts from the suite.

Great Expectations is imported lazily: it takes seconds to import and only validation needs it.
The validate task starts that import in a background thread (:func:`import_in_background`)
as soon as it knows a batch is coming, so it overlaps the Spark work that precedes the suite.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from demand_forecasting.data.rules import RESCUED, Rule

log = logging.getLogger(__name__)

#: Batches up to this many rows are validated by GE on pandas; bigger ones on Spark.
PANDAS_MAX_ROWS = 1_000_000
TABLE_EXPECTATION = "bronze_has_every_column"


class SuiteMismatchError(RuntimeError):
    """GE and the Spark rules disagree on how many rows break a rule (a bug in a rule)."""


@dataclass(frozen=True)
class SuiteResult:
    """What GE said about one batch."""

    success: bool
    engine: str
    #: ``{rule name: unexpected count}``; the table-level expectation has no count.
    unexpected: Mapping[str, int | None]
    statistics: Mapping[str, Any]
    #: The full GE validation result, JSON-serialisable.
    result_json: Mapping[str, Any]
    #: ``{rule name: a few distinct values that broke it}`` (GE's partial unexpected list).
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def run_suite(
    judged: DataFrame,
    rules: list[Rule],
    bronze_columns: list[str],
    suite_name: str,
    rows: int,
) -> SuiteResult:
    """Run the GE suite of ``rules`` over the judged batch.

    Args:
        judged: the batch from :func:`demand_forecasting.data.rules.judge` (ideally cached).
        rules: the rules the batch was judged by, in suite order.
        bronze_columns: the columns bronze must have (checked at table level).
        suite_name: the suite's name in results (``<dataset>_bronze``).
        rows: the batch's row count (chooses the engine).
    """
    gx, gxe = _import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # No progress bars in job logs.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    engine = "pandas" if rows <= PANDAS_MAX_ROWS else "spark"
    columns = sorted({RESCUED, *_columns_of(rules)})
    frame = judged.select(*columns)
    if engine == "pandas":
        data: Any = frame.toPandas()
        source = context.data_sources.add_pandas(f"{suite_name}_source")
    else:
        data = frame
        source = context.data_sources.add_spark(f"{suite_name}_source")
    batch_definition = source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe(
        "whole_batch"
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    expectations = {}
    for rule in rules:
        expectation = getattr(gxe, rule.expectation)(
            **rule.expectation_kwargs, meta={"rule": rule.name, "description": rule.description}
        )
        expectations[rule.name] = suite.add_expectation(expectation)
    table_check = gxe.ExpectTableColumnsToMatchSet(
        column_set=columns, exact_match=False, meta={"rule": TABLE_EXPECTATION}
    )
    suite.add_expectation(table_check)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
    result = batch.validate(
        suite, result_format={"result_format": "BASIC", "partial_unexpected_count": 5}
    )
    return _summarise(result, engine)


def check_agreement(suite: SuiteResult, rule_counts: Mapping[str, int]) -> None:
    """Raise if GE's unexpected count of a rule differs from the Spark rule's row count.

    Raises:
        SuiteMismatchError: naming every rule that disagrees and both counts.
    """
    problems = [
        f"{name}: Spark rule failed {rule_counts.get(name, 0)} row(s), GE counted "
        f"{suite.unexpected.get(name)}"
        for name in rule_counts
        if suite.unexpected.get(name) != rule_counts.get(name, 0)
    ]
    if problems:
        raise SuiteMismatchError(
            "the Spark rules and the Great Expectations suite disagree: "
            + "; ".join(problems)
            + ". This is a bug in demand_forecasting/data/rules.py (the rule and its "
            "expectation must mean the same); nothing was written."
        )


_background_import: threading.Thread | None = None


def import_in_background() -> None:
    """Start importing Great Expectations in a daemon thread (once per process).

    :func:`run_suite` waits for that thread before it imports (so two threads never import
    the same modules at once); a failed background import is raised again there.
    """
    global _background_import
    if _background_import is None:
        _background_import = threading.Thread(
            target=_import_quietly, name="import-great-expectations", daemon=True
        )
        _background_import.start()


def _import_quietly() -> None:
    try:
        _import_gx()
    except Exception:  # run_suite's own import raises it where it matters
        log.debug("background import of Great Expectations failed", exc_info=True)


def _import_gx() -> tuple[Any, Any]:
    background = _background_import
    if background is not None and background is not threading.current_thread():
        background.join()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def _columns_of(rules: list[Rule]) -> set[str]:
    found: set[str] = set()
    for rule in rules:
        kwargs = rule.expectation_kwargs
        found.update(c for c in [kwargs.get("column")] if c)
        found.update(kwargs.get("column_list", []))
        condition = kwargs.get("row_condition")
        if isinstance(condition, dict):
            found.add(condition["column"]["name"])
    return found


def _summarise(result: Any, engine: str) -> SuiteResult:
    unexpected: dict[str, int | None] = {}
    examples: dict[str, tuple[str, ...]] = {}
    for item in result.results:
        name = item.expectation_config.meta.get("rule", item.expectation_config.type)
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"Great Expectations could not evaluate rule {name}: "
                f"{item.exception_info.get('exception_message')}"
            )
        count = item.result.get("unexpected_count")
        unexpected[name] = int(count) if count is not None else None
        values = item.result.get("partial_unexpected_list") or ()
        examples[name] = tuple(dict.fromkeys(str(v) for v in values))
    return SuiteResult(
        success=bool(result.success),
        engine=engine,
        unexpected=unexpected,
        examples=examples,
        statistics=dict(result.statistics),
        result_json=result.to_json_dict(),
    )
