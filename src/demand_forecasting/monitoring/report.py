"""The monthly run report: Markdown with PNG plots, from small pandas frames (pure).

:func:`write_report` takes a :class:`ReportInputs` and writes ``report.md`` plus
``psi_heatmap.png``, ``forecasts_vs_actuals.png``, ``cost_per_model.png`` and
``task_times.png`` into a folder; it does no I/O beyond that folder.
:mod:`demand_forecasting.monitoring.monitor` gathers the inputs from the run's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from demand_forecasting import names
from demand_forecasting.models import intervals
from demand_forecasting.monitoring.accuracy import AccuracyAlert
from demand_forecasting.monitoring.costs import UNATTRIBUTED, per_model, unattributed
from demand_forecasting.monitoring.decision_runs import provenance
from demand_forecasting.monitoring.drift import KEEP, RETRAIN_DRIFT
from demand_forecasting.monitoring.quarantine_advice import advice_lines

REPORT_FILE = "report.md"
HEATMAP_FILE = "psi_heatmap.png"
FORECAST_FILE = "forecasts_vs_actuals.png"
TASK_TIME_FILE = "task_times.png"
COST_FILE = "cost_per_model.png"
#: Columns of the time-per-task table.
TELEMETRY_COLUMNS = ["task", "status", "duration_s", "rows_in", "rows_out", "peak_memory_mb"]


@dataclass
class ReportInputs:
    """Everything the report shows.

    Attributes:
        drift: the run month's drift rows (``segment, feature, psi, psi_critical, breach,
            decision`` and, where the table records them, ``decided_by_job_run, decided_at``:
            a rerun keeps an earlier run's decisions, and the report says whose they are).
        accuracy: per segment recent WAPE/bias (``segment, wape, bias, first_month,
            last_month``).
        forecasts: the run month's forecast totals (``segment, month, forecast``).
        past_forecasts: earlier runs' horizon-1 forecasts (``segment, month, forecast``).
        actuals: segment totals (``segment, month, y``).
        telemetry: this job run's tasks (``task, duration_s, rows_in, rows_out,
            peak_memory_mb, status``).
        new_champions: ``{segment: "old -> new"}`` versions that changed since last run.
        segments_on_fallback: segments forecast by the seasonal-naive fallback champion.
        horizon: months each forecast should cover (None: not checked).
        segments_off_horizon: ``{segment: months}`` whose champion forecasts another number
            of months than ``horizon``.
        awaiting_approval: the challengers the approve job would promote, with their gate
            figures (:func:`demand_forecasting.monitoring.monitor.awaiting_approval`).
        no_champion_reasons: ``{segment: why}`` of the segments without a champion that
            have nothing awaiting approval either (the run fails on them;
            :func:`demand_forecasting.monitoring.monitor.no_champion_reasons`).
        segments_without_data: segments not forecast because they have no value in the run
            month (rows quarantined, or the segment stopped).
        series_not_forecast: ``{series_id: why}`` of the series of forecast segments with
            a value in the year before but no forecast of the run month
            (:func:`demand_forecasting.monitoring.monitor.series_not_forecast_reasons`).
        costs: the job run's estimated cost per segment and task
            (:func:`demand_forecasting.monitoring.costs.allocate`).
        job_cost: the estimated cost of the job run's tasks (None: not known).
        cost_per_hour: the price of an hour of the job's compute behind both.
        failed_tasks: ``{task: error}`` of the job run's tasks whose last attempt failed.
        quarantine: the newest landing files with quarantined rows (``source_file, rows,
            corrected, rules, validated_at``; :func:`quarantine_summary`), ``quarantined_rows``
            all rows the quarantine table holds (None: no table, nothing was ever
            quarantined) and ``quarantined_corrected`` those of them corrected since by a later
            load (None: not counted, and ``quarantine`` has no ``corrected`` column).
        quarantine_row_months: ``{source_file: [YYYY-MM, ...]}``, the months of the rows of
            those files that broke ``month_not_before_file_month``: each goes to a correction
            file of its own month (empty: none, or not known without the dataset).
        month_format: the dataset's ``month.format`` (None: not known), for the advice on
            months that do not parse.
        gaps: the months of the year up to the run month in which series have no value
            inside their span (``month, gaps, series``: gap rows and all rows of the month;
            :func:`demand_forecasting.monitoring.monitor.gap_months`).
        approvals_reported: the month whose recorded list of versions awaiting approval
            (``approval_requests``) is the one shown, so that the approve job's
            ``segments=reported:<month>`` approves exactly them (None: not recorded).
        approve_options: what a local ``demand-forecasting approve`` needs to act on this
            run's models
            (:func:`demand_forecasting.models.command_context.approve_options`); empty:
            its defaults.
    """

    run_month: date
    target: str
    job_run_id: str | None
    generated_at: datetime
    series_forecast: int
    segments_without_champion: list[str]
    drift: pd.DataFrame
    accuracy: pd.DataFrame
    alerts: list[AccuracyAlert]
    forecasts: pd.DataFrame
    past_forecasts: pd.DataFrame
    actuals: pd.DataFrame
    telemetry: pd.DataFrame
    new_champions: dict[str, str] = field(default_factory=dict)
    segments_on_fallback: list[str] = field(default_factory=list)
    horizon: int | None = None
    segments_off_horizon: dict[str, int] = field(default_factory=dict)
    awaiting_approval: pd.DataFrame = field(default_factory=pd.DataFrame)
    no_champion_reasons: dict[str, str] = field(default_factory=dict)
    segments_without_data: list[str] = field(default_factory=list)
    series_not_forecast: dict[str, str] = field(default_factory=dict)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)
    job_cost: float | None = None
    cost_per_hour: float = 1.0
    failed_tasks: dict[str, str] = field(default_factory=dict)
    plot_segments: int = 4
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
    quarantined_rows: int | None = None
    quarantined_corrected: int | None = None
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)
    approve_options: str = ""
    quarantine_row_months: dict[str, list[str]] = field(default_factory=dict)
    month_format: str | None = None
    approvals_reported: date | None = None


def _flag(value: object) -> bool:
    """A breach cell as a bool: None, NaN and NA (unmeasured) are False."""
    try:
        return bool(value is not None and value == value and value)
    except TypeError:  # pd.NA
        return False


def psi_heatmap(drift: pd.DataFrame) -> Figure | None:
    """PSI by segment (rows) and feature (columns); breaches marked ``x``. None if empty."""
    measured = drift.dropna(subset=["feature", "psi"])
    if measured.empty:
        return None
    grid = measured.pivot_table(
        index="segment", columns="feature", values="psi", aggfunc="max"
    ).sort_index()
    flags = measured.assign(breach=measured["breach"].map(lambda b: float(_flag(b))))
    breach = (
        flags.pivot_table(index="segment", columns="feature", values="breach", aggfunc="max")
        .reindex_like(grid)
        .fillna(0.0)
    )
    height = max(3.0, 0.22 * len(grid) + 1.5)
    figure = Figure(figsize=(max(6.0, 0.55 * grid.shape[1] + 3), height))
    axes = figure.add_subplot()
    image = axes.imshow(
        np.clip(grid.to_numpy(dtype=float), 0, 1), aspect="auto", cmap="Reds", vmin=0, vmax=1
    )
    axes.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(grid.shape[0]), grid.index, fontsize=7)
    shade = np.clip(grid.to_numpy(dtype=float), 0, 1)
    for (i, j), flagged in np.ndenumerate(breach.to_numpy(dtype=bool)):
        if flagged:
            colour = "white" if shade[i, j] > 0.5 else "black"
            axes.text(j, i, "x", ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axes, label="PSI (capped at 1)")
    axes.set_title("PSI by segment and feature (x = breach)")
    return figure


def forecast_figure(
    actuals: pd.DataFrame,
    forecasts: pd.DataFrame,
    past: pd.DataFrame,
    segments: Sequence[str],
    history_months: int = 36,
) -> Figure | None:
    """Per segment: actual totals, this run's forecast path and earlier one-month-ahead
    forecasts (dots). None when there is nothing to draw."""
    if not segments:
        return None
    columns = 2 if len(segments) > 1 else 1
    rows = int(np.ceil(len(segments) / columns))
    figure = Figure(figsize=(6 * columns, 3.2 * rows))
    for index, segment in enumerate(segments):
        axes = figure.add_subplot(rows, columns, index + 1)
        actual = actuals[actuals["segment"] == segment].sort_values("month")
        actual = actual.tail(history_months)
        axes.plot(pd.to_datetime(actual["month"]), actual["y"], color="black", label="actual")
        path = (
            forecasts[forecasts["segment"] == segment]
            .groupby("month")["forecast"]
            .sum()
            .sort_index()
        )
        if not path.empty:
            axes.plot(
                pd.to_datetime(path.index),
                path.to_numpy(),
                linestyle="--",
                color="tab:blue",
                label="forecast",
            )
        earlier = past[past["segment"] == segment].groupby("month")["forecast"].sum()
        if not earlier.empty:
            axes.scatter(
                pd.to_datetime(earlier.index),
                earlier.to_numpy(),
                s=12,
                color="tab:orange",
                label="1 month ahead (earlier runs)",
                zorder=3,
            )
        axes.set_title(segment, fontsize=9)
        axes.tick_params(labelsize=7)
        if index == 0:
            axes.legend(fontsize=7, loc="upper left")
    # Room for each row's title under the row above; the outer margins are trimmed when
    # saved (see write_report).
    figure.subplots_adjust(hspace=0.35, wspace=0.2)
    return figure


def task_time_figure(telemetry: pd.DataFrame) -> Figure | None:
    """Seconds per task, in the order the tasks ran. None if there is no telemetry."""
    if telemetry.empty:
        return None
    figure = Figure(figsize=(7, 0.4 * len(telemetry) + 1.2))
    axes = figure.add_subplot()
    labels = telemetry["task"].tolist()[::-1]
    axes.barh(labels, telemetry["duration_s"].tolist()[::-1], color="tab:gray")
    axes.set_xlabel("seconds")
    axes.set_title(f"Time per task (total {telemetry['duration_s'].sum():.0f} s)")
    return figure


def cost_figure(costs: pd.DataFrame) -> Figure | None:
    """Estimated cost per model, stacked by task, most expensive at the top (the cost no
    model carries is left out: the text names it). None if no model has a cost."""
    if costs.empty:
        return None
    costs = costs[costs["basis"] != UNATTRIBUTED]
    if costs.empty:
        return None
    grid = costs.pivot_table(
        index="segment", columns="task", values="cost", aggfunc="sum", fill_value=0.0
    )
    tasks = list(dict.fromkeys(costs["task"]))  # in the order the tasks ran
    grid = grid[tasks].loc[grid.sum(axis=1).sort_values().index]
    figure = Figure(figsize=(8, max(3.0, 0.2 * len(grid) + 1.5)))
    axes = figure.add_subplot()
    left = np.zeros(len(grid))
    colours = [
        "tab:gray", "tab:olive", "tab:cyan", "tab:purple",
        "tab:blue", "tab:orange", "tab:brown", "tab:green", "tab:pink", "tab:red",
    ]  # fmt: skip
    for index, task in enumerate(tasks):
        values = grid[task].to_numpy(dtype=float)
        axes.barh(grid.index, values, left=left, label=task, color=colours[index % len(colours)])
        left += values
    axes.tick_params(axis="y", labelsize=6)
    axes.set_xlabel("estimated cost")
    axes.set_title(f"Estimated cost per model (models' total {left.sum():.3g})")
    axes.legend(fontsize=7, loc="lower right")
    return figure


def cost_format(largest: float) -> str:
    """A fixed-point format that gives ``largest`` three significant digits (``".6f"`` for
    0.000418), so a column of costs lines up without scientific notation."""
    if not largest > 0 or not np.isfinite(largest):
        return ".2f"
    return f".{max(2, 2 - int(np.floor(np.log10(largest))))}f"


def cost_section(
    costs: pd.DataFrame, job_cost: float | None, cost_per_hour: float, images: dict[str, str]
) -> list[str]:
    """The report's cost lines: the job's estimate, the most expensive models, the figure,
    and the cost no model carries (shared tasks in a run that forecast no series), so that
    what the lines split adds up to the total they name."""
    lines = ["## Cost per model (estimate)", ""]
    if costs.empty:
        return [*lines, "_no task times for this job run_", ""]
    models = per_model(costs)
    loose = unattributed(costs)
    total = float(costs["cost"].sum()) if job_cost is None else job_cost
    measured = sorted(set(costs.loc[costs["basis"] == "measured", "task"]))
    lines += [
        f"This run's tasks up to score, at a price of {cost_per_hour:g} per hour of "
        f"compute: **{total:.3g}** in total"
        + (
            f", **{models['cost'].mean():.3g} per model** on average over {len(models)} "
            f"models (median {models['cost'].median():.3g}, max {models['cost'].max():.3g})"
            if not models.empty
            else ""
        )
        + ". The work each model did itself "
        f"({', '.join(measured) or 'none this run'}) is measured; the other tasks are shared "
        "by the series each model forecast. The bill adds cluster start-up and idle time; the "
        "model_costs table holds every segment and task.",
        "",
        *unattributed_lines(loose, float(models["cost"].sum()), total),
    ]
    if COST_FILE in images:
        lines += [f"![{images[COST_FILE]}]({COST_FILE})", ""]
    top = models.head(10)
    if not loose.empty:
        top = pd.concat(
            [top, pd.DataFrame([unattributed_row(loose, total)], columns=models.columns)],
            ignore_index=True,
        )
    top = top.rename(columns={"job_share": "share of run"})
    money = cost_format(float(top["cost"].max()))
    lines += [
        "Most expensive models:"
        if loose.empty
        else "Most expensive models, and the cost no model carries:",
        "",
        _table(
            top,
            {"cost": money, "measured": money, "shared": money, "share of run": ".1%"},
        ),
    ]
    return lines


#: The cost table's line for the cost no model carries.
UNATTRIBUTED_LINE = "(unattributed: shared tasks, no series forecast)"


def unattributed_lines(loose: pd.DataFrame, models_cost: float, total: float) -> list[str]:
    """Why part of the cost is no model's, and that the parts add up (nothing when all of it
    is the models')."""
    if loose.empty:
        return []
    return [
        f"**{loose['cost'].sum():.3g} of it is attributed to no model** "
        f"({', '.join(loose['task'])}): those tasks are shared by the series each model "
        "forecast, and this run forecast no series (no segment had a champion to score "
        "with; before a `require_approval` target's first approval, none has). The models' "
        f"{models_cost:.3g} and the unattributed {loose['cost'].sum():.3g} add up to the "
        f"total {total:.3g}; the model_costs table holds that cost with no segment (basis "
        "`unattributed`).",
        "",
    ]


def unattributed_row(loose: pd.DataFrame, total: float) -> dict[str, object]:
    """The unattributed cost as a row of the most-expensive-models table."""
    cost = float(loose["cost"].sum())
    return {
        "segment": UNATTRIBUTED_LINE,
        "cost": cost,
        "measured": 0.0,
        "shared": cost,
        "job_share": cost / total if total > 0 else 0.0,
    }


def plot_segments(inputs: ReportInputs) -> list[str]:
    """The segments to draw: alerted, then retrained, then the largest ones."""
    chosen: list[str] = [a.segment for a in inputs.alerts]
    retrained = inputs.drift.loc[inputs.drift["decision"].ne(KEEP), "segment"]
    chosen += sorted(set(retrained) - set(chosen))
    if not inputs.actuals.empty:
        largest = inputs.actuals.groupby("segment")["y"].sum().sort_values(ascending=False)
        chosen += [s for s in largest.index if s not in chosen]
    forecast_segments = set(inputs.forecasts["segment"]) if not inputs.forecasts.empty else set()
    return [s for s in chosen if s in forecast_segments][: inputs.plot_segments]


#: Longest per-segment list and table the report prints in full: with hundreds of
#: segments it names these and says where the rest are.
LIST_LIMIT = 12
TABLE_LIMIT = 20


def _listed(items: Sequence[str], where: str) -> str:
    """``items`` joined, cut after :data:`LIST_LIMIT` with how many more and ``where``."""
    if len(items) <= LIST_LIMIT:
        return ", ".join(items) or "none"
    return f"{', '.join(items[:LIST_LIMIT])} and {len(items) - LIST_LIMIT} more ({where})"


def _table(
    frame: pd.DataFrame, formats: dict[str, str] | None = None, rest: str | None = None
) -> str:
    """A Markdown table; with ``rest`` (where the other rows are), only the first
    :data:`TABLE_LIMIT` rows and a line that counts the others."""
    if frame.empty:
        return "_none_\n"
    more = len(frame) - TABLE_LIMIT if rest is not None else 0
    if more > 0:
        return _table(frame.head(TABLE_LIMIT), formats) + f"\n_... {more} more rows: {rest}._\n"
    formats = formats or {}
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    lines = [header, rule]
    for record in frame.to_dict("records"):
        cells = []
        for column in frame.columns:
            value = record[column]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append("")
            elif column in formats:
                cells.append(format(value, formats[column]))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def decisions_table(drift: pd.DataFrame, job_run_id: str | None = None) -> pd.DataFrame:
    """Per segment that is not kept: decision, breaching features and the largest PSI; and
    the job run that decided it when any of them is not ``job_run_id`` (a rerun keeps an
    earlier run's decisions)."""
    columns = ["segment", "decision", "breaching features", "max PSI"]
    changed = drift[drift["decision"].ne(KEEP)]
    if changed.empty:
        return pd.DataFrame(columns=columns)
    recorded = "decided_by_job_run" in changed.columns
    rows = []
    for segment, group in changed.groupby("segment", sort=True):
        breached = sorted(group.loc[group["breach"].map(_flag), "feature"])
        decider = group["decided_by_job_run"].iloc[0] if recorded else None
        rows.append(
            {
                "segment": segment,
                "decision": group["decision"].iloc[0],
                "breaching features": ", ".join(breached),
                "max PSI": group["psi"].max(),
                "decided by job run": "not recorded" if pd.isna(decider) else str(decider),
            }
        )
    if recorded and any(r["decided by job run"] != job_run_id for r in rows):
        columns.append("decided by job run")
    # Drift first, the largest PSI first: a long table is cut after its first rows.
    table = pd.DataFrame(rows)[columns]
    table["_order"] = table["decision"].ne(RETRAIN_DRIFT)
    return (
        table.sort_values(["_order", "max PSI", "segment"], ascending=[True, False, True])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def gap_listing(gaps: pd.DataFrame) -> str:
    """``2016-03 (16 of 16 series), ...`` from :attr:`ReportInputs.gaps`, oldest first."""
    ordered = gaps.sort_values("month")
    names_ = pd.to_datetime(ordered["month"]).dt.strftime("%Y-%m")
    return ", ".join(
        f"{m} ({g} of {n} series)"
        for m, g, n in zip(names_, ordered["gaps"], ordered["series"], strict=True)
    )


def data_quality_section(inputs: ReportInputs) -> list[str]:
    """The quarantine's newest files with their rules (rows that broke the quality gate are
    kept there, never dropped), or that nothing was ever quarantined; then the recent months
    in which series have no value (a month file that never arrived shows up only here)."""
    lines = ["## Data quality", ""]
    total, corrected = inputs.quarantined_rows, inputs.quarantined_corrected
    bullets = advice_lines(
        inputs.quarantine.to_dict("records"), inputs.quarantine_row_months, inputs.month_format
    )
    advice = (
        [
            "What to land, by the rule the rows broke (a correction file is "
            "`<file_prefix>_<YYYY-MM>_<suffix>.csv`; the latest load wins in silver):",
            "",
            *bullets,
            "",
        ]
        if bullets
        else [
            "The rows not corrected are in older files than these: the quarantine table has "
            "them with their rules (docs/data_pipeline.md says what each rule asks).",
            "",
        ]
    )
    if not total:
        lines += ["No row has been quarantined: every landed row passed the rules.", ""]
    elif corrected is None:  # not counted
        lines += [
            f"The quarantine table holds {total:,} row(s) that broke a rule, each with the rules "
            "it broke; the newest files with such rows:",
            "",
            _table(inputs.quarantine, {}),
            *advice,
        ]
    else:
        lines += [
            f"The quarantine table holds {total:,} row(s) that broke a rule, each with the rules "
            f"it broke; {corrected:,} of them have been corrected since (`corrected`: silver "
            "holds a value of the row's series and month from a later load). The newest files "
            "with such rows:",
            "",
            _table(inputs.quarantine, {}),
            *(
                [
                    f"The {total - corrected:,} row(s) not corrected still need a correction file.",
                    "",
                ]
                if total > corrected
                else ["Every quarantined row has been corrected: no correction file is needed.", ""]
            ),
            *(advice if total > corrected else []),
        ]
    if not inputs.gaps.empty:
        listed = gap_listing(inputs.gaps)
        lines += [
            f"**Months without a value** (series with no row in a month inside their span: `y` "
            f"null and `is_gap` true in silver and gold) in the year up to the run month: "
            f"{listed}. A month file that never arrived, or whose rows were quarantined, "
            "shows up here; the models forecast across the gap. Land the month's file (a late "
            "file fills it, and the next run uses it).",
            "",
        ]
    return lines


def approval_section(
    awaiting: pd.DataFrame, approve_options: str = "", reported: date | None = None
) -> list[str]:
    """The versions awaiting approval with the gate's MASEs (nothing when none awaits);
    ``approve_options`` as
    :func:`demand_forecasting.models.command_context.approve_options` gives them;
    ``reported``: :attr:`ReportInputs.approvals_reported`."""
    if awaiting.empty:
        return []
    return [
        f"## Awaiting approval ({len(awaiting)})",
        "",
        "Each segment's challenger passed validation and waits for a person to approve it "
        "(`require_approval`); approving a segment promotes the version below "
        "(docs/deployment.md, 'Approving and rolling back'). `model`: a trained model, or "
        "the seasonal-naive fallback registered when the segment's trained model was refused "
        "(its MASE is seasonal naive's). `retrained in`: a segment without champion (or on "
        "the fallback) whose version nobody approves is retrained in that month "
        "(`approval_wait_months` after the version's data), and a new version that passes "
        "validation supersedes the one listed; `overdue`: due, and still awaiting (this "
        "month's new candidate was refused or failed to train, or the segment's newest "
        "candidate was refused recently: it waits `refused_retry_months`). Backtest MASE "
        "of the version, the current champion (empty: none) and seasonal naive, on the same "
        "rows:",
        "",
        *approval_due(awaiting),
        _table(
            awaiting.rename(columns={"marked": "awaiting since", "refresh": "retrained in"}),
            {"candidate_mase": ".3f", "champion_mase": ".3f", "naive_mase": ".3f"},
            rest=f"the {names.EVALUATIONS} and {names.AUDIT} tables have them all",
        ),
        *pinned_approval(awaiting, approve_options, reported),
    ]


def approval_due(awaiting: pd.DataFrame) -> list[str]:
    """A line naming the versions that check_drift retrains next month if still not
    approved, and those overdue (nothing when there are none)."""
    if "refresh" not in awaiting.columns:
        return []
    refresh = awaiting["refresh"].fillna("").astype(str)
    segments = awaiting["segment"].astype(str)
    due = {
        "retrained next month unless approved": list(
            segments[refresh.str.endswith("(next month)")]
        ),
        "overdue": list(segments[refresh.str.startswith("overdue")]),
    }
    parts = [f"{len(named)} {label}: {', '.join(named)}" for label, named in due.items() if named]
    return [f"**Approval due:** {'; '.join(parts)}.", ""] if parts else []


#: Up to this many versions awaiting, the report prints the ``segment=version`` list of
#: them all; above it only ``reported:<month>`` (the list would not fit a job parameter).
PINNED_LIST_MAX = 10


def pinned_approval(
    awaiting: pd.DataFrame, approve_options: str = "", reported: date | None = None
) -> list[str]:
    """The approve commands for exactly the versions listed: a run that validates a newer
    challenger before the approval makes it refuse that segment, instead of promoting a
    version nobody reviewed. Each version pinned (``segment=version``, when few wait or the
    list is not recorded), and ``reported:<month>`` when ``reported`` (however many wait)."""
    options = approve_options + " " if approve_options else ""
    refused = (
        "If a later run has validated another version of a segment, the approval is refused, "
        "naming both"
    )
    lines = []
    if reported is None or len(awaiting) <= PINNED_LIST_MAX:
        pins = [f"{s}={v}" for s, v in zip(awaiting["segment"], awaiting["version"], strict=True)]
        lines += [
            "To approve exactly these versions, start the approve job with the job parameter "
            f"`segments` set to `{','.join(pins)}` (locally: `demand-forecasting approve "
            f"{' '.join(pins)} {options}--reason ...`); keep only the segments you approve. "
            f"{refused} (`all` and bare segment names promote whichever version awaits when "
            "it runs).",
            "",
        ]
    if reported is not None:
        month = f"{reported:%Y-%m}"
        lines += [
            f"To approve all {len(awaiting)} versions listed here, set `segments` to "
            f"`reported:{month}` (locally: `demand-forecasting approve --as-reported {month} "
            f"{options}--reason ...`): it approves the versions this report lists, each pinned. "
            f"{refused}."
            + (
                ""
                if len(awaiting) <= PINNED_LIST_MAX
                else " To approve only some, set `segments` to their `segment=version` pairs "
                "from the table (e.g. `a=7,b=3`)."
            ),
            "",
        ]
    return lines


def without_champion(segments: Sequence[str], awaiting: pd.DataFrame) -> list[str]:
    """``segments`` (no champion, not forecast), each awaiting its first approval named so:
    no seasonal-naive fallback stands in for those (it would await approval too)."""
    if "segment" not in awaiting.columns:
        return list(segments)
    versions = dict(zip(awaiting["segment"], awaiting["version"], strict=True))
    return [
        f"{s} (v{versions[s]} awaits approval, so no fallback stands in)" if s in versions else s
        for s in segments
    ]


def awaiting_first_approval(inputs: ReportInputs) -> list[str]:
    """Segments without a champion whose challenger awaits approval, sorted: not forecast
    until a person approves them (every segment, in a ``require_approval`` target's first
    month)."""
    if inputs.awaiting_approval.empty:
        return []
    waiting = set(inputs.awaiting_approval["segment"])
    return sorted(s for s in inputs.segments_without_champion if s in waiting)


#: What to do about segments awaiting their first approval (the log and the report say it).
#: Approving only moves the ``champion`` alias: score, in the next run of the monthly job,
#: forecasts with the approved versions.
APPROVE_THEN_SCORE = (
    "approve them (the approve job; docs/deployment.md, 'Approving and rolling back'), then "
    "rerun this month's monthly job (approving does not forecast) or wait for next month's run"
)

#: The documented approval commands (docs/deployment.md, 'Approving and rolling back');
#: ``{options}``: :attr:`ReportInputs.approve_options`.
APPROVE_COMMANDS = r"""```bash
# Databricks, logged in as yourself (or Jobs UI: Run now with different parameters); the
# value is the one 'Awaiting approval' ends with: `reported:<YYYY-MM>` (every version that
# section lists, each pinned) or `<segment>=<version>` pairs:
JOB_ID=$(databricks jobs list --name demand-forecasting-approve --output json | jq '.[0].job_id')
databricks jobs run-now --json "{\"job_id\": $JOB_ID, \"job_parameters\": {\"segments\":
  \"<segment>=<version>,...\", \"reason\": \"<ticket, review>\", \"approver\": \"<your e-mail>\"}}"
# local runner (or: demand-forecasting approve --as-reported <YYYY-MM> ...):
demand-forecasting approve <segment>=<version> ... {options}--reason "<ticket, review>"
```"""


def status_section(inputs: ReportInputs) -> list[str]:
    """The lines above the summary when segments have no champion: those awaiting approval
    (as designed: what to do) and those with nothing awaiting (the run fails: why each)."""
    lines: list[str] = []
    waiting = awaiting_first_approval(inputs)
    if waiting:
        lines += [
            f"**Awaiting approval: {len(waiting)} segment(s) have no champion yet, so they are "
            "not forecast** ("
            + _listed(waiting, "see 'Awaiting approval' below")
            + "). Their challengers passed validation and wait for a person "
            "(`require_approval`): this is how a new deployment starts, not a failure. "
            "Review 'Awaiting approval' below, then approve the versions you reviewed with the "
            "`segments` value it ends with, which pins each version (a version validated "
            "after your review is then refused, not promoted):",
            "",
            APPROVE_COMMANDS.replace(
                "{options}", inputs.approve_options + " " if inputs.approve_options else ""
            ),
            "",
            "Approving only makes them champions. Their forecasts come from the next run of "
            "the monthly job: rerun this month (job `demand-forecasting-monthly`: Run now; "
            "locally `demand-forecasting run monthly`), or wait for next month's run.",
            "",
        ]
    if inputs.no_champion_reasons:
        reasons = sorted(inputs.no_champion_reasons.items())
        lines += [
            f"**FAILED: {len(reasons)} segment(s) have no champion and nothing awaiting "
            "approval**, so nothing forecasts them. Retrain them (the training job with "
            "`--segments`) or make a version champion (`rollback --to`):",
            "",
            *[f"- {segment}: {why}" for segment, why in reasons[:LIST_LIMIT]],
            *(
                [f"- ... {len(reasons) - LIST_LIMIT} more: the monitor task's error names all."]
                if len(reasons) > LIST_LIMIT
                else []
            ),
            "",
        ]
    return lines


def no_forecast_note(inputs: ReportInputs) -> str:
    """Why the run month has no forecasts, and what to do."""
    waiting = awaiting_first_approval(inputs)
    if waiting:
        return (
            f"_No forecasts this month: no segment has a champion yet ({len(waiting)} "
            f"await approval; the top of the report shows how). To get forecasts, "
            f"{APPROVE_THEN_SCORE}._"
        )
    if inputs.no_champion_reasons:
        return (
            "_No forecasts this month: segments have no champion and nothing awaiting "
            "approval (the top of the report says why each)._"
        )
    return "_no forecasts_"


def series_not_forecast_lines(reasons: dict[str, str]) -> list[str]:
    """The summary line naming each series of a forecast segment that was not forecast, with
    why (nothing when every such series was): a series that stops must not show only as a
    smaller count."""
    if not reasons:
        return []
    items = [f"{series} ({why})" for series, why in sorted(reasons.items())]
    more = len(items) - LIST_LIMIT
    rest = f"; and {more} more (the score task's log names them)" if more > 0 else ""
    return [
        f"- Series not forecast ({len(items)}; their segments were): "
        + "; ".join(items[:LIST_LIMIT])
        + rest
        + "."
    ]


def render_markdown(inputs: ReportInputs, images: dict[str, str]) -> str:
    """The report text; ``images`` maps a figure's file name to its caption."""
    month = inputs.run_month.strftime("%Y-%m")
    decisions = decisions_table(inputs.drift, inputs.job_run_id)
    counts = inputs.drift.drop_duplicates("segment")["decision"].value_counts()
    decided_by, provenance_lines = provenance(
        inputs.drift, inputs.job_run_id, inputs.telemetry, inputs.run_month
    )
    lines = [
        f"# Monthly forecasting run {month} ({inputs.target})",
        "",
        f"Job run `{inputs.job_run_id or 'n/a'}`, report generated "
        f"{inputs.generated_at:%Y-%m-%d %H:%M} UTC.",
        "",
        *status_section(inputs),
        "## Summary",
        "",
        f"- **{inputs.series_forecast} series forecast** from {month} by "
        f"{inputs.forecasts['segment'].nunique() if not inputs.forecasts.empty else 0} "
        "segment champions.",
        "- Segments without a champion (not forecast): "
        + _listed(
            without_champion(inputs.segments_without_champion, inputs.awaiting_approval),
            "the monitor task's log names them all",
        )
        + ".",
        *(
            [
                f"- Segments with no value in {month} (not forecast; their rows are in "
                "quarantine, or the segment stopped): "
                f"{', '.join(inputs.segments_without_data)}."
            ]
            if inputs.segments_without_data
            else []
        ),
        *series_not_forecast_lines(inputs.series_not_forecast),
        "- Segments forecast by the seasonal-naive fallback (their model did not beat it): "
        + _listed(inputs.segments_on_fallback, "their champion versions carry the tag fallback")
        + ".",
        *(
            [
                f"- Segments forecasting another number of months than the horizon "
                f"({inputs.horizon}): "
                + _listed(
                    [f"{s} ({n})" for s, n in inputs.segments_off_horizon.items()],
                    "the monitor task's log names them all",
                )
                + f". Their champion was trained for that horizon and no candidate at "
                f"{inputs.horizon} months has passed validation yet (check_drift retrains "
                "them every month: decision retrain_horizon)."
            ]
            if inputs.segments_off_horizon
            else []
        ),
        "- Retraining decisions: "
        + (", ".join(f"{k} {v}" for k, v in counts.sort_index().items()) or "none")
        + decided_by
        + ".",
        f"- New champions since the previous run ({len(inputs.new_champions)}): "
        + _listed(
            [f"{s} ({v})" for s, v in sorted(inputs.new_champions.items())],
            f"the {names.AUDIT} table has every promotion",
        )
        + ".",
        f"- Accuracy alerts: {len(inputs.alerts)}.",
        *[
            f"- **FAILED task {task}**: {error.splitlines()[0][:300]}"
            for task, error in inputs.failed_tasks.items()
        ],
        "",
        *approval_section(
            inputs.awaiting_approval, inputs.approve_options, inputs.approvals_reported
        ),
        *data_quality_section(inputs),
        "## Retraining decisions",
        "",
        *provenance_lines,
        _table(decisions, {"max PSI": ".2f"}, rest=f"the {names.DRIFT} table has them all"),
        "## Drift",
        "",
    ]
    if HEATMAP_FILE in images:
        lines += [f"![{images[HEATMAP_FILE]}]({HEATMAP_FILE})", ""]
    # Ties (segments of the same shape give the same PSI) in name order, not storage order.
    top = (
        inputs.drift.dropna(subset=["psi"])
        .sort_values(["psi", "segment", "feature"], ascending=[False, True, True])
        .head(10)[["segment", "feature", "psi", "psi_critical", "breach"]]
    )
    lines += ["Largest PSI values:", "", _table(top, {"psi": ".3f", "psi_critical": ".3f"})]
    lines += ["## Accuracy", ""]
    for alert in inputs.alerts:
        lines.append(f"- **ALERT** {alert.describe()}")
    if inputs.alerts:
        lines.append("")
    if inputs.accuracy.empty:
        lines += [
            "_No forecast has its month's actual yet: accuracy starts the month after the "
            "first forecasts._",
            "",
        ]
    else:
        lines += [
            "One-month-ahead WAPE and bias per segment (newest evaluated months), and the "
            f"share of actuals inside the {intervals.LEVEL:.0%} forecast interval "
            "(interval_coverage, forecasts of those months at any horizon; empty without "
            "intervals):",
            "",
            _table(
                inputs.accuracy.sort_values("wape", ascending=False),
                {"wape": ".1%", "bias": "+.1%", "interval_coverage": ".0%"},
                rest=f"the worst are above; the {names.ACCURACY} table has every segment",
            ),
        ]
    lines += ["## Forecasts vs actuals", ""]
    if FORECAST_FILE in images:
        drawn = plot_segments(inputs)
        lines += [
            f"Segment totals of {len(drawn)} of {inputs.forecasts['segment'].nunique()} "
            "segments, chosen in this order: accuracy alerts, then segments retrained or "
            f"not kept this month, then the largest by volume: {', '.join(drawn)}.",
            "",
            f"![{images[FORECAST_FILE]}]({FORECAST_FILE})",
            "",
        ]
    else:
        lines += [no_forecast_note(inputs), ""]
    lines += cost_section(inputs.costs, inputs.job_cost, inputs.cost_per_hour, images)
    lines += ["## Time per task", ""]
    if TASK_TIME_FILE in images:
        lines += [f"![{images[TASK_TIME_FILE]}]({TASK_TIME_FILE})", ""]
    shown = [c for c in TELEMETRY_COLUMNS if c in inputs.telemetry.columns]
    lines += [_table(inputs.telemetry[shown], {"duration_s": ".1f", "peak_memory_mb": ".0f"})]
    return "\n".join(lines)


def write_report(folder: Path, inputs: ReportInputs) -> Path:
    """Write ``report.md`` and its PNGs into ``folder``; return the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        HEATMAP_FILE: ("PSI heatmap", psi_heatmap(inputs.drift)),
        FORECAST_FILE: (
            "Forecasts vs actuals",
            forecast_figure(
                inputs.actuals, inputs.forecasts, inputs.past_forecasts, plot_segments(inputs)
            ),
        ),
        COST_FILE: ("Estimated cost per model", cost_figure(inputs.costs)),
        TASK_TIME_FILE: ("Time per task", task_time_figure(inputs.telemetry)),
    }
    images = {}
    for file_name, (caption, figure) in figures.items():
        if figure is not None:
            # No tight_layout: each layout pass measures every label again (about a third of
            # the report's time); "tight" trims the outer margins in the one save.
            figure.savefig(folder / file_name, dpi=90, bbox_inches="tight")
            images[file_name] = caption
    path = folder / REPORT_FILE
    path.write_text(render_markdown(inputs, images), encoding="utf-8")
    return path
