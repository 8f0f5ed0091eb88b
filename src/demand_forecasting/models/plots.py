"""Pictures for the MLflow runs, rendered to PNG bytes where the model was trained.

Rendering happens in the Spark worker that fitted the segment, so the driver only uploads
bytes (a plot costs ~0.3 s of CPU to draw; 46 of them on the driver would double its logging time).
"""

from __future__ import annotations

import io

import pandas as pd


def forecast_vs_actual_png(
    history: pd.DataFrame,
    holdout: pd.DataFrame,
    forecast: pd.DataFrame,
    title: str,
    months_shown: int = 48,
) -> bytes:
    """One panel per series shown (up to 6 with months in the window): actuals, the holdout
    forecast, the next forecast.

    Args:
        history: ``series_id, month, y``.
        holdout: ``series_id, month, forecast, seasonal_naive`` of the holdout origin.
        forecast: ``series_id, month, forecast`` from the newest month (and its interval,
            ``forecast_lower`` / ``forecast_upper``, drawn as a band when present).
        title: figure title.
        months_shown: months of history drawn before the forecasts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = pd.to_datetime(history["month"])
    cutoff = months.max() - pd.DateOffset(months=months_shown)
    ids = history["series_id"].astype(str)
    # Series with months in the window (one that stopped years ago would be an empty panel).
    series = sorted(ids[months > cutoff].unique())[:6] or sorted(ids.unique())[:1]
    height = 2.2 * len(series)
    # A shared month axis (labels drawn once) and fixed margins instead of tight_layout:
    # together they were ~60 % of the plot's time, which was ~40 % of a segment's training.
    fig, axes = plt.subplots(len(series), 1, figsize=(8, height), squeeze=False, sharex=True)
    fig.subplots_adjust(
        left=0.08, right=0.98, top=1 - 0.45 / height, bottom=0.35 / height, hspace=0.35
    )
    for ax, sid in zip(axes[:, 0], series, strict=False):
        past = history[
            (history["series_id"].astype(str) == sid) & (pd.to_datetime(history["month"]) > cutoff)
        ].sort_values("month")
        ax.plot(pd.to_datetime(past["month"]), past["y"], color="black", lw=1.2, label="actual")
        held = holdout[holdout["series_id"] == sid].sort_values("month")
        if not held.empty:
            ax.plot(
                held["month"], held["forecast"], color="tab:blue", lw=1.2, label="holdout forecast"
            )
            ax.plot(
                held["month"],
                held["seasonal_naive"],
                color="tab:gray",
                lw=0.8,
                ls=":",
                label="seasonal naive",
            )
        ahead = forecast[forecast["series_id"] == sid].sort_values("month")
        if not ahead.empty:
            ax.plot(
                ahead["month"],
                ahead["forecast"],
                color="tab:orange",
                lw=1.2,
                ls="--",
                label="forecast",
            )
            if "forecast_lower" in ahead and ahead["forecast_lower"].notna().any():
                ax.fill_between(
                    pd.to_datetime(ahead["month"]),
                    ahead["forecast_lower"].to_numpy(float),
                    ahead["forecast_upper"].to_numpy(float),
                    color="tab:orange",
                    alpha=0.2,
                    lw=0,
                    label="80 % interval",
                )
        ax.set_title(sid, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=4)
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()
