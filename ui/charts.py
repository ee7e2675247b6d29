"""Altair progress charts (presentation only; the data comes from
``analyzer.dashboard_data``)."""
from __future__ import annotations

import altair as alt
import pandas as pd


def progress_chart(rows: list[dict], treatments: list[dict], bands: list[dict], metric: str,
                   *, height: int = 220, title: str | None = None) -> alt.LayerChart | None:
    """One metric over the visits: line and points, treatment dates as dashed
    rules, the noise band (first visit ± the MDC each visit was judged by) shaded."""
    data = pd.DataFrame([r for r in rows if r["metric"] == metric])
    if data.empty:
        return None
    data["date"] = pd.to_datetime(data["date"])
    unit = data["unit"].iloc[0] or ""
    y_title = f"{metric} ({unit})" if unit else metric
    layers = []
    band = [b for b in bands if b["metric"] == metric]
    if band:  # first visit ± the MDC each visit was judged by (centred steps where it changes)
        bdf = pd.DataFrame(band[0]["steps"])
        bdf["date"] = pd.to_datetime(bdf["date"])
        layers.append(alt.Chart(bdf).mark_area(opacity=0.18, color="grey", interpolate="step").encode(
            x="date:T", y="low:Q", y2="high:Q",
            tooltip=[alt.Tooltip("low:Q", format=".4g"), alt.Tooltip("high:Q", format=".4g"),
                     alt.Tooltip("mdc:Q", title="detectable change", format=".3g")]))
    if treatments:
        tdf = pd.DataFrame(treatments)
        tdf["date"] = pd.to_datetime(tdf["date"])
        layers.append(alt.Chart(tdf).mark_rule(strokeDash=[4, 3], color="#c0392b").encode(
            x="date:T", tooltip=["date:T", "treatment:N"]))
    layers.append(alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("date:T", title="visit date", axis=alt.Axis(format="%d %b %Y", labelAngle=0, labelOverlap=True,
                                                              values=visit_ticks(data["date"]))),
        y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False)),
        tooltip=["date:T", alt.Tooltip("value:Q", format=".4g"),
                 *(["basis:N"] if "basis" in data else []),
                 *([alt.Tooltip("mdc:Q", title="detectable change (±)", format=".3g")]
                   if "mdc" in data else []),
                 *([alt.Tooltip("capture:N", title="photo")] if "capture" in data else [])]))
    return alt.layer(*layers).properties(height=height, title=title or metric)


def visit_ticks(dates: pd.Series) -> list[alt.DateTime]:
    """Axis ticks at the visit dates (Vega-Lite's own time ticks repeat a day's label
    at 12-hour steps over short courses)."""
    return [alt.DateTime(year=d.year, month=d.month, date=d.day) for d in sorted(set(dates))]
