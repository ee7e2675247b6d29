"""Progress charts as PNG bytes (matplotlib's Agg canvas; no pyplot, no global state)."""
from __future__ import annotations

import io
from datetime import date

import numpy as np

from .course import SUMMARY_KEYS

LABELS = {"texture": "Texture", "redness": "Redness", "pigmentation": "Pigmentation"}
COLOURS = {"texture": "#4c72b0", "redness": "#c44e52", "pigmentation": "#8c6d31"}


def summary_series(course, view: str = "frontal", mdc: dict | None = None
                   ) -> dict[str, list[tuple[date, float, float | None]]]:
    """``{key: [(visit date, value, MDC)]}`` of the summary indices: the baseline's own
    analysis, then each visit's value on the baseline's footing
    (:func:`analyzer.compare.charted_value`: the baseline plus the change its
    stored comparison measured; the photo's own value without one), with the
    MDC that visit is judged by (:func:`analyzer.compare.charted_series`; None
    where neither the comparison nor ``mdc`` gives one)."""
    from ..compare import charted_series

    def own_value(photo, key):
        a = photo.latest_analysis
        value = getattr(a, key, None)
        if value is None:
            value = ((a.result or {}).get("summary") or {}).get(key)
        return value if isinstance(value, (int, float)) else None

    out: dict[str, list] = {k: [] for k in SUMMARY_KEYS}
    for pt in charted_series(course.series(view), course.comparisons, own_value, mdc=mdc):
        out[pt.key].append((pt.visit.visit_date, pt.value, pt.mdc))
    return out


def summary_units(course, view: str = "frontal") -> dict[str, str]:
    """Units of the summary indices as the stored analyses give them."""
    for _, photo in course.series(view):
        units = ((photo.latest_analysis.result or {}).get("summary") or {}).get("units")
        if units:
            return {k: str(units.get(k, "")) for k in SUMMARY_KEYS}
    return {k: "" for k in SUMMARY_KEYS}


def progress_png(series: dict[str, list[tuple[date, float, float | None]]], units: dict[str, str],
                 treatments: list[date], *, width_in: float = 7.0, dpi: int = 150) -> bytes:
    """One panel per summary index: values by visit date, treatment days as dashed
    lines, the baseline ± the minimal detectable change each visit is judged by
    as a grey band (in centred steps where it changes from visit to visit).

    Parameters
    ----------
    series : dict
        ``{key: [(date, value, MDC or None)]}`` (:func:`summary_series`; keys
        without values are drawn empty, visits without an MDC without a band).
    units : dict
        ``{key: unit}``.
    treatments : list of date
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    keys = list(series)
    fig = Figure(figsize=(width_in, 1.55 * len(keys) + 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        pts = series[key]
        for i, day in enumerate(treatments):
            ax.axvline(day, color="#999999", linestyle="--", linewidth=0.8,
                       label="treatment" if i == 0 else None)
        if pts:
            xs, ys, limits = zip(*pts)
            if all(limits) and len(set(limits)) == 1:
                ax.axhspan(ys[0] - limits[0], ys[0] + limits[0], color="#dddddd",
                           label="baseline ± detectable change")
            elif any(limits):
                half = np.array([np.nan if m is None else m for m in limits], float)
                ax.fill_between(xs, ys[0] - half, ys[0] + half, step="mid", color="#dddddd",
                                linewidth=0, label="baseline ± detectable change")
            ax.plot(xs, ys, marker="o", color=COLOURS.get(key, "black"), linewidth=1.5,
                    label=LABELS.get(key, key))
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center",
                    va="center", color="#777777")
        unit = units.get(key, "")
        ax.set_ylabel(f"{LABELS.get(key, key)}" + (f" ({unit})" if unit else ""), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, axis="y", color="#eeeeee")
        ax.legend(fontsize=7, loc="best", frameon=False)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
