"""The gate's MASE on segments with near-zero series (PBS, real data).

The gate compares a segment's candidate with seasonal naive on the segment's MASE, the mean
of its per-(series, origin) MASE. A series that was (almost) all zeros before the origins
has a near-zero in-sample scale, so one such series' MASE (hundreds) decides the mean. This
script backtests every PBS segment as ``train`` does (the default recipe fitted at the
oldest of K = 6 origins, H = 12) at a few run months, keeps the frames, and compares ways
to aggregate the segment's MASE:

- ``mean``: the mean of per-pair MASE (the protocol's figure; the gate's before);
- ``mean, scale >= x * median``: the same, leaving out pairs whose scale is below a share
  x of the segment's median scale (they still count in WAPE and bias);
- ``pooled``: sum of per-pair MAE over sum of scales.

For each it reports in how many segments one series carries more than half of the
candidate's figure (one series decides the segment), how many segments' verdicts
(candidate beats seasonal naive) hold when any one series is left out, and how many
series the measure leaves out.

Development run months (2003-12, 2004-06, 2004-12) choose; 2005-12 (the QA's run) is
reported once. Usage:

    .venv/bin/python benchmarks/intermittent_gate.py [--jobs 2] [--output intermittent_gate.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed

from demand_forecasting.models.backtest import NAIVE, backtest, backtest_origins, comparable
from demand_forecasting.models.panel import panel_from_history
from demand_forecasting.models.recipe import Recipe
from machine_info import machine
from pbs_data import load_pbs

HERE = Path(__file__).resolve().parent
CANDIDATE = "candidate"
RUN_MONTHS = {
    "development": ["2003-12", "2004-06", "2004-12"],
    "qa_run": ["2005-12"],
}
SHARES = (0.001, 0.01, 0.05)


def segment_backtest(history: pd.DataFrame, run_month: pd.Timestamp) -> pd.DataFrame:
    """The candidate's and seasonal naive's comparable backtest rows at ``run_month``."""
    warnings.filterwarnings("ignore")
    panel = panel_from_history(history).until(run_month)
    recipe = Recipe(horizon=12)
    origins = backtest_origins(panel.end, recipe.horizon, 6)
    frame = backtest(panel, {CANDIDATE: recipe}, origins, recipe.horizon)
    return comparable(frame, [CANDIDATE, NAIVE])


def pair_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (series, origin): the scale and each method's MAE."""
    return (
        rows.assign(
            candidate=(rows[CANDIDATE] - rows["actual"]).abs(),
            naive=(rows[NAIVE] - rows["actual"]).abs(),
        )
        .groupby(["series_id", "origin"])
        .agg(scale=("scale", "first"), candidate=("candidate", "mean"), naive=("naive", "mean"))
        .reset_index()
    )


def mean_mase(share: float) -> Callable[[pd.DataFrame, str], pd.Series]:
    """Per series, its summed per-pair MASE over the mean's pairs: those whose scale >=
    share x the segment's median scale (the measure: their sum / pairs kept)."""

    def contributions(pairs: pd.DataFrame, method: str) -> pd.Series:
        scaled = pairs[pairs["scale"] > 0]
        kept = scaled[scaled["scale"] >= share * scaled["scale"].median()]
        return (kept[method] / kept["scale"] / len(kept)).groupby(kept["series_id"]).sum()

    return contributions


def pooled_mase(pairs: pd.DataFrame, method: str) -> pd.Series:
    """Per series, its MAE over the sum of scales (the measure: their sum)."""
    scaled = pairs[pairs["scale"] > 0]
    return (scaled[method] / scaled["scale"].sum()).groupby(scaled["series_id"]).sum()


MEASURES: dict[str, Callable[[pd.DataFrame, str], pd.Series]] = {
    "mean": mean_mase(0.0),
    **{f"mean, scale >= {share:g} x median": mean_mase(share) for share in SHARES},
    "pooled": pooled_mase,
}


def verdict_figures(pairs: pd.DataFrame, measure: Callable[[pd.DataFrame, str], pd.Series]) -> dict:
    """The verdict, the figures, whether leaving out any one series keeps the verdict, the
    largest share of the candidate's measure one series carries, the pairs left out."""
    by_series = measure(pairs, CANDIDATE)
    candidate, naive = float(by_series.sum()), float(measure(pairs, "naive").sum())
    passed = bool(candidate < naive)
    stable = all(
        bool(measure(rest, CANDIDATE).sum() < measure(rest, "naive").sum()) == passed
        for series in pairs["series_id"].unique()
        if len(rest := pairs[pairs["series_id"] != series])
    )
    kept = measure(pairs.assign(candidate=1.0, scale=pairs["scale"]), CANDIDATE)
    return {
        "candidate": round(candidate, 4),
        "naive": round(naive, 4),
        "passed": passed,
        "stable": stable,
        "top_series_share": round(float(by_series.max() / candidate), 3),
        "series_left_out": int(pairs["series_id"].nunique() - len(kept)),
    }


def main() -> None:
    """Backtest every segment at each run month and compare the gate measures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--output", default="intermittent_gate.json", help="file in results/")
    args = parser.parse_args()
    started = time.perf_counter()
    start_machine = machine()
    data = load_pbs()
    tasks = [
        (window, month, segment, frame[["series_id", "month", "y"]])
        for window, months in RUN_MONTHS.items()
        for month in months
        for segment, frame in data.groupby("segment")
    ]
    frames = Parallel(n_jobs=args.jobs)(
        delayed(segment_backtest)(history, pd.Timestamp(month)) for _, month, _, history in tasks
    )
    results: dict[str, dict] = {}
    for (window, month, segment, _), rows in zip(tasks, frames, strict=True):
        pairs = pair_errors(rows)
        for name, measure in MEASURES.items():
            figures = verdict_figures(pairs, measure)
            results.setdefault(window, {}).setdefault(name, {})[f"{month} {segment}"] = figures
    summary = {
        window: {
            name: {
                "segments": len(rows),
                "passed": sum(r["passed"] for r in rows.values()),
                "verdict_holds_without_any_one_series": sum(r["stable"] for r in rows.values()),
                "one_series_carries_over_half": sum(
                    r["top_series_share"] > 0.5 for r in rows.values()
                ),
                "series_left_out": sum(r["series_left_out"] for r in rows.values()),
            }
            for name, rows in by_measure.items()
        }
        for window, by_measure in results.items()
    }
    print(json.dumps(summary, indent=1))
    for name in MEASURES:
        print(name, "d__general 2005-12:", results["qa_run"][name]["2005-12 d__general"])
    out = {
        "summary": summary,
        "segments": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": start_machine,
    }
    (HERE / "results" / args.output).write_text(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
