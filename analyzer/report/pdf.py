"""The PDF progress report (fpdf2), from stored results only.

Pages: (1) header, patient code, summary of the change since baseline and
the course timeline; (2) before/after photos per view, aligned to the
baseline; (3) change since baseline at every visit with whether it exceeds
the detectable change, and heatmaps of where the latest visit changed;
progress charts; whole-face metric table; (A) every
metric by region; (B) methods: metric definitions from the registry,
algorithm version, detectable-change provenance, alignment, and the
statement that this is not a diagnosis.
"""
from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .course import SUMMARY_KEYS, Course, treatment_text
from .frames import Frame, fit

LABELS = {"texture": "Texture", "redness": "Redness", "pigmentation": "Pigmentation"}
NOT_A_DIAGNOSIS = (
    "This report is not a diagnosis. It describes measurements made on photographs "
    "(texture, redness and pigmentation of the skin surface) and how they changed between "
    "visits. Lighting, camera, make-up and expression also change such measurements; a "
    "change is called detectable only when it is larger than the change seen between "
    "retaken photos of unchanged skin. Please discuss any question about your skin with "
    "your practitioner or a physician.")
STATUS_LEGEND = (
    ("improved", "less of the concern than at baseline, by more than the detectable change"),
    ("worse", "more of the concern than at baseline, by more than the detectable change"),
    ("higher / lower", "a metric that is not a concern (e.g. ITA, skin tone) moved beyond "
                       "the detectable change"),
    ("no detectable change", "the change is within the noise of retaking a photo"),
    ("no detectable change beyond the pigment change", "texture (or redness) moved the same "
     "way as pigmentation and by no more than a pigment change alone moves it in a photo, so "
     "no change of its own is claimed"),
    ("no detectable change beyond the texture change", "pigmentation moved the same way as "
     "texture and by no more than a texture change alone moves it in a photo, so no "
     "pigmentation change is claimed"),
    ("not calibrated", "no detectable-change calibration exists for this metric, so the "
                       "change cannot be judged against the noise"),
    ("not measured", "the metric could not be measured on one of the photos"),
    ("not comparable", "the follow-up photo could not be aligned to the baseline with "
                       "confidence, so no change is claimed (a retake is advised)"),
)
PHOTO_SIDE_PX = 900     # longest side of a photo embedded in the PDF
MAX_GRID = 12           # visits shown in the grid of a view (the latest ones)


def format_number(value, signed: bool = False) -> str:
    """How numbers are printed in the report (4 significant digits; "n/a" if missing)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _pct(rel) -> str:
    if rel is None or not isinstance(rel, (int, float)) or not math.isfinite(rel):
        return "n/a"
    return f"{100 * rel:+.1f} %"


def _font_paths() -> dict[str, Path]:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"": ttf / "DejaVuSans.ttf", "B": ttf / "DejaVuSans-Bold.ttf",
            "I": ttf / "DejaVuSans-Oblique.ttf"}


def _png_aspect(png: bytes) -> float:
    """Height / width of a PNG image."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.size[1] / im.size[0]


def _jpeg(img: np.ndarray, side: int = PHOTO_SIDE_PX) -> io.BytesIO:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(fit(img, side)).save(buf, format="JPEG", quality=88)
    buf.seek(0)
    return buf


class _PDF:
    """fpdf2 document with the report's fonts, running header and footer."""

    def __init__(self, title: str, running: str):
        from fpdf import FPDF

        class Doc(FPDF):
            def header(self):
                if self.page_no() > 1:
                    self.set_font("DejaVu", "", 7)
                    self.set_text_color(110)
                    self.cell(0, 4, running, new_x="LMARGIN", new_y="NEXT")
                    self.ln(2)
                    self.set_text_color(0)

            def footer(self):
                self.set_y(-12)
                self.set_font("DejaVu", "I", 7)
                self.set_text_color(110)
                self.cell(0, 5, f"Not a diagnosis: measurements on photographs.   "
                                f"Page {self.page_no()} of {{nb}}", align="C")
                self.set_text_color(0)

        self.doc = Doc(orientation="P", unit="mm", format="A4")
        d = self.doc
        for style, path in _font_paths().items():
            d.add_font("DejaVu", style, str(path))
        d.set_title(title)
        d.set_creator("skin progress analyzer")
        d.set_auto_page_break(True, margin=16)
        d.set_margins(15, 14, 15)
        d.alias_nb_pages()
        d.add_page()
        d.set_font("DejaVu", "", 10)

    # text helpers
    def h1(self, text: str) -> None:
        d = self.doc
        d.set_font("DejaVu", "B", 16)
        d.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        d.set_font("DejaVu", "", 10)

    def h2(self, text: str, *, new_page: bool = False, keep_mm: float = 30) -> None:
        """A section heading, on a new page when ``keep_mm`` of what follows would not fit."""
        d = self.doc
        if new_page or d.will_page_break(keep_mm):
            d.add_page()
        d.ln(3)
        d.set_font("DejaVu", "B", 12)
        d.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        d.ln(1)
        d.set_font("DejaVu", "", 10)

    def para(self, text: str, size: float = 9, style: str = "") -> None:
        d = self.doc
        d.set_font("DejaVu", style, size)
        d.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
        d.ln(1)
        d.set_font("DejaVu", "", 10)

    def table(self, headings: list[str], rows: list[list[str]], widths: list[float],
              align: list[str] | None = None, size: float = 7.5) -> None:
        from fpdf.fonts import FontFace

        d = self.doc
        d.set_font("DejaVu", "", size)
        align = align or ["LEFT"] * len(headings)
        with d.table(col_widths=widths, width=d.epw, text_align=align,
                     line_height=size * 0.5, padding=(0.6, 1.0),
                     headings_style=FontFace(emphasis="BOLD", fill_color=(232, 232, 232)),
                     borders_layout="HORIZONTAL_LINES", align="LEFT") as t:
            for row in [headings] + rows:
                r = t.row()
                for value in row:
                    r.cell(str(value))
        d.ln(2)
        d.set_font("DejaVu", "", 10)

    def photo_pair(self, left: Frame, right: Frame, left_caption: str, right_caption: str,
                   height: float = 95) -> None:
        """Two same-sized crops side by side, scaled to ``height`` mm (or the width)."""
        d = self.doc
        gap = 4
        h_px, w_px = left.image.shape[:2]
        w = min((d.epw - gap) / 2, height * w_px / h_px)
        h = w * h_px / w_px
        if d.will_page_break(h + 12):
            d.add_page()
        y = d.get_y()
        x0 = d.l_margin + (d.epw - 2 * w - gap) / 2
        for i, (frame, caption) in enumerate(((left, left_caption), (right, right_caption))):
            x = x0 + i * (w + gap)
            d.image(_jpeg(frame.image), x=x, y=y, w=w, h=h)
            d.set_xy(x, y + h + 1)
            d.set_font("DejaVu", "", 7.5)
            d.multi_cell(w, 3.6, caption, align="C", new_x="RIGHT", new_y="TOP")
        d.set_xy(d.l_margin, y + h + 10)
        d.set_font("DejaVu", "", 10)

    def photo_grid(self, images: list[np.ndarray], captions: list[str], per_row: int = 4) -> None:
        """Same-sized images (RGB uint8) in rows of ``per_row`` with captions."""
        d = self.doc
        gap = 3
        h_px, w_px = images[0].shape[:2]
        w = (d.epw - (per_row - 1) * gap) / per_row
        h = w * h_px / w_px
        for start in range(0, len(images), per_row):
            if d.will_page_break(h + 10):
                d.add_page()
            y = d.get_y()
            for i, (image, caption) in enumerate(zip(images[start:start + per_row],
                                                     captions[start:start + per_row])):
                x = d.l_margin + i * (w + gap)
                d.image(_jpeg(image, 500), x=x, y=y, w=w, h=h)
                d.set_xy(x, y + h + 0.8)
                d.set_font("DejaVu", "", 6.5)
                d.multi_cell(w, 3, caption, align="C", new_x="RIGHT", new_y="TOP")
            d.set_xy(d.l_margin, y + h + 8)
        d.set_font("DejaVu", "", 10)

    def image_png(self, png: bytes, width: float | None = None) -> None:
        d = self.doc
        w = width or d.epw
        h = w * _png_aspect(png)
        if d.will_page_break(h):
            d.add_page()
        d.image(io.BytesIO(png), x=d.l_margin + (d.epw - w) / 2, y=d.get_y(), w=w, h=h)
        d.set_y(d.get_y() + h + 2)

    def bytes(self) -> bytes:
        return bytes(self.doc.output())


# ------------------------------------------------------------------- sections


def _caption(frame: Frame, course: Course) -> str:
    text = f"{frame.visit.visit_date.isoformat()} (day {frame.day})"
    if frame.source == "baseline":
        return text + " · baseline"
    if frame.aligned:
        text += " · aligned to baseline"
        if frame.ok is False:
            text += " (not trusted)"
    else:
        text += " · NOT aligned"
    return text


def _summary_sentence(key: str, delta: dict | None) -> str:
    from ..compare import BEYOND, with_caution

    d = delta or {}
    status = str(d.get("status") or "not measured")
    label = LABELS.get(key, key)
    value, rel, mdc = d.get("value"), d.get("relative"), d.get("mdc")
    change = f"{format_number(value, signed=True)} ({_pct(rel)})"
    if status.startswith(("improved", "worse")) or status in ("higher", "lower"):
        return (f"{label}: {with_caution(status, d)}: changed by {change}, more than the "
                f"detectable change ({format_number(mdc)}).")
    if status == "no detectable change":
        return (f"{label}: no detectable change (changed by {change}, within the detectable "
                f"change of {format_number(mdc)}).")
    if status in BEYOND.values():
        other = "texture" if status.endswith("texture change") else "pigmentation"
        return (f"{label}: {status} (changed by {change}, no more than the {other} change alone "
                "moves it).")
    if status == "not calibrated":
        return (f"{label}: changed by {change}; not calibrated, so whether this exceeds the "
                "noise of retaking a photo cannot be said.")
    if status.startswith("not comparable"):
        return (f"{label}: not compared: the follow-up photo could not be aligned to the "
                "baseline with confidence.")
    return f"{label}: could not be measured on these photos."


def _first_page(pdf: _PDF, course: Course, *, include_name: bool, generated: datetime) -> None:
    d = pdf.doc
    p = course.patient
    d.set_font("DejaVu", "", 10)
    d.set_text_color(90)
    d.cell(0, 5, course.clinic_name or "Clinic", new_x="LMARGIN", new_y="NEXT")
    d.set_text_color(0)
    pdf.h1("Skin progress report")
    first, last = course.visits[0].visit_date, course.visits[-1].visit_date
    sessions = sum(1 for v in course.visits if v.procedure)
    lines = [f"Patient code: {p.code}"]
    if include_name and p.name:
        lines.append(f"Name: {p.name}")
    if p.skin_type:
        lines.append(f"Fitzpatrick skin type (as recorded): {p.skin_type}")
    lines.append(f"Course: {first.isoformat()} to {last.isoformat()} "
                 f"({(last - first).days} days, {len(course.visits)} visits, "
                 f"{sessions} treatment sessions)")
    lines.append(f"Report generated: {generated.strftime('%Y-%m-%d %H:%M UTC')}")
    pdf.para("\n".join(lines), size=10)

    visit, comp = course.latest_comparison()
    pdf.h2("Summary")
    if comp is None:
        pdf.para("No comparison with the baseline is stored yet, so no change can be "
                 "reported. Open the visit comparison in the dashboard to compute it.")
    else:
        delta = comp["result"].get("delta") or {}
        latest = visit == course.series("frontal")[-1][0]
        pdf.para(f"{'Latest visit' if latest else 'Latest compared visit'} "
                 f"({visit.visit_date.isoformat()}, day {course.day(visit)}) compared with the "
                 f"baseline ({course.series('frontal')[0][0].visit_date.isoformat()}):",
                 size=9.5)
        pdf.para("\n".join("• " + _summary_sentence(k, delta.get(k)) for k in SUMMARY_KEYS),
                 size=9.5)

    pdf.h2("Course timeline")
    rows = []
    for v in course.visits:
        photo = course.photo(v, "frontal") or next(
            (ph for ph in v.photos if ph.latest_analysis is not None
             and ph.latest_analysis.status == "ok"), None)
        a = photo.latest_analysis if photo else None
        views = ", ".join(sorted({ph.view for ph in v.photos})) or "none"
        rows.append([v.visit_date.isoformat(), str(course.day(v)),
                     treatment_text(v) or "photos only", f"{len(v.photos)} ({views})",
                     (a.quality_overall or "") if a else ("analysis failed" if v.photos else "—"),
                     format_number(a.texture) if a else "", format_number(a.redness) if a else "",
                     format_number(a.pigmentation) if a else ""])
    units = _summary_units(course)
    pdf.table(["Date", "Day", "Treatment and settings", "Photos (views)", "Capture quality",
               f"Texture ({units['texture']})", f"Redness ({units['redness']})",
               f"Pigment. ({units['pigmentation']})"],
              rows, [17, 7, 52, 22, 14, 14, 14, 14],
              ["LEFT", "RIGHT", "LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"])
    pdf.para("Texture, redness and pigmentation are the summary indices of each visit's "
             "photo (frontal where there is one), measured on the whole face when the photo "
             "was analysed; larger means more of each. Their definitions are in the methods "
             "appendix.", size=7.5, style="I")
    pdf.para(NOT_A_DIAGNOSIS, size=8.5, style="B")


def _summary_units(course: Course) -> dict[str, str]:
    from .charts import summary_units

    return summary_units(course)


def _photo_pages(pdf: _PDF, course: Course, frames_by_view: dict[str, list[Frame]]) -> None:
    first = True
    for view, frames in frames_by_view.items():
        if len(frames) < 2:
            continue
        pdf.h2(f"Before and after: {view.replace('_', ' ')} view", new_page=first)
        first = False
        base, latest = frames[0], frames[-1]
        pdf.photo_pair(base, latest, _caption(base, course), _caption(latest, course), height=105)
        notes = [f"{f.visit.visit_date.isoformat()}: {f.note}" for f in frames[1:] if f.note]
        pdf.para("Each follow-up photo is warped into the baseline photo's frame (the "
                 "alignment stored with its comparison, or computed for this report), so the "
                 "same skin is shown in the same place; both are cropped to the baseline's face.",
                 size=7.5, style="I")
        if notes:
            pdf.para("Alignment notes: " + "; ".join(notes), size=7.5)
        if len(frames) > 2:
            pdf.h2(f"Every visit: {view.replace('_', ' ')} view")
            pdf.photo_grid([f.image for f in frames[-MAX_GRID:]],
                           [_caption(f, course) for f in frames[-MAX_GRID:]])
    if first:
        pdf.h2("Before and after", new_page=True)
        pdf.para("There are not yet two visits with analysed photos of the same view, so no "
                 "before/after pair can be shown.")


def _change_maps(pdf: _PDF, course: Course, change_maps: tuple | None) -> None:
    """Where the latest frontal visit changed against the baseline (heatmaps)."""
    if change_maps is None:
        return
    from ..views import CHANGE_LIMITS, CHANGE_UNITS

    visit, maps = change_maps
    pdf.h2(f"Where it changed: baseline to {visit.visit_date.isoformat()} (day {course.day(visit)})")
    pdf.photo_grid([maps[k] for k in CHANGE_LIMITS], [f"{LABELS[k]} change" for k in CHANGE_LIMITS],
                   per_row=3)
    pdf.para("Follow-up minus baseline of what each index averages (hemoglobin density; melanin "
             "excess over the skin around it; local texture-band RMS), smoothed over 1.5 mm, on "
             "skin seen in both photos, drawn over the baseline: blue = less, green = no change, "
             "red = more. Colour limits are fixed ("
             + ", ".join(f"{LABELS[k].lower()} ±{v:g} {CHANGE_UNITS[k]}" for k, v in CHANGE_LIMITS.items())
             + "), so a colour means the same change in every report; a colour is not by itself "
             "a detectable change (see the table above).", size=7.5, style="I")


def _change_page(pdf: _PDF, course: Course) -> None:
    from ..compare import with_caution

    pdf.h2("Change since baseline", new_page=True)
    series = course.series("frontal")
    if len(series) < 2:
        pdf.para("Only one visit has an analysed frontal photo: nothing to compare yet.")
        return
    base = series[0][1]
    rows, notes = [], []
    for visit, photo in series[1:]:
        comp = course.comparison(base.id, photo.id)
        when = f"{visit.visit_date.isoformat()} (day {course.day(visit)})"
        if comp is None:
            rows.append([when, "all", "", "", "", "", "", "not compared yet"])
            continue
        r = comp["result"]
        bsum = (r.get("baseline") or {}).get("summary") or {}
        fsum = (r.get("followup") or {}).get("summary") or {}
        for key in SUMMARY_KEYS:
            dd = (r.get("delta") or {}).get(key) or {}
            rows.append([when, LABELS[key], format_number(bsum.get(key)),
                         format_number(fsum.get(key)), format_number(dd.get("value"), True),
                         _pct(dd.get("relative")), format_number(dd.get("mdc")),
                         with_caution(str(dd.get("status") or "not measured"), dd)])
            when = ""
        for flag in r.get("flags") or []:
            if "colour" in flag and "uncalibrated" in flag:
                continue  # said once in the methods appendix
            notes.append(f"{visit.visit_date.isoformat()}: {flag}")
    pdf.table(["Visit", "Index", "Baseline", "Follow-up", "Change", "Change %",
               "Detectable change (MDC)", "Status"], rows,
              [29, 19, 15, 15, 16, 14, 19, 33],
              ["LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "LEFT"])
    pdf.para("Baseline and follow-up values of a comparison are measured again on the skin "
             "visible in both photos (each photo in its own pixels), so they can differ a "
             "little from the timeline's values of the whole photo.", size=7.5, style="I")
    if notes:
        pdf.para("Notes:\n" + "\n".join("• " + n for n in notes), size=7.5)


def _charts(pdf: _PDF, course: Course, mdc: dict) -> None:
    from .charts import progress_png, summary_series, summary_units

    series = summary_series(course, mdc=mdc)
    if sum(len(v) for v in series.values()) == 0:
        return
    png = progress_png(series, summary_units(course),
                       [v.visit_date for v in course.visits if v.procedure])
    width = min(pdf.doc.epw, 150)
    pdf.h2("Progress charts", keep_mm=20 + width * _png_aspect(png))
    pdf.image_png(png, width=width)
    pdf.para("Dots: the first visit's summary index, then each later visit's as the first "
             "visit's plus the change measured between the two photos on the skin both show "
             "(the photo's own index where no trusted comparison exists); dashed lines: "
             "treatment sessions; grey band (when calibrated): the first visit plus or minus "
             "the detectable change each visit is judged by (wider at visits whose photo was "
             "saved differently from the first, or drawn at its own index).",
             size=7.5, style="I")


def _metric_rows(comp: dict, regions: list[str] | None) -> list[list[str]]:
    rows = []
    by_region = comp["result"].get("regions") or {}
    order = sorted(by_region, key=lambda r: (r != "whole_face", r))
    for region in order:
        if regions is not None and region not in regions:
            continue
        for name, m in by_region[region].items():
            rows.append([region.replace("_", " "), name, str(m.get("unit") or ""),
                         format_number(m.get("baseline")), format_number(m.get("followup")),
                         format_number(m.get("delta"), True),
                         str(m.get("status") or "not measured")])
    return rows


METRIC_HEADINGS = ["Region", "Metric", "Unit", "Baseline", "Latest", "Change", "Status"]
METRIC_WIDTHS = [22, 46, 16, 18, 18, 18, 42]
METRIC_ALIGN = ["LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "LEFT"]


def _metric_tables(pdf: _PDF, course: Course) -> None:
    visit, comp = course.latest_comparison()
    if comp is None:
        return
    when = f"{visit.visit_date.isoformat()} (day {course.day(visit)})"
    pdf.h2(f"All metrics, whole face: baseline vs latest visit {when}", new_page=True)
    pdf.table(METRIC_HEADINGS, _metric_rows(comp, ["whole_face"]), METRIC_WIDTHS, METRIC_ALIGN)
    pdf.h2(f"Appendix A. Every metric by region: baseline vs {when}", new_page=True)
    rows = [r for r in _metric_rows(comp, None) if r[0] != "whole face"]
    pdf.table(METRIC_HEADINGS, rows, METRIC_WIDTHS, METRIC_ALIGN, size=7)


def _methods(pdf: _PDF, course: Course, mdc: dict) -> None:
    from ..metrics import REGISTRY
    from ..metrics.registry import ALL_REGIONS
    from ..version import ALGORITHM_VERSION

    pdf.h2("Appendix B. Methods", new_page=True)
    versions = course.algorithm_versions()
    pdf.para(f"Algorithm version of the stored results used here: {', '.join(versions) or 'none'}. "
             f"This report was made with version {ALGORITHM_VERSION}; the definitions below are "
             "those of that version. Results are read from the database as they were stored; "
             "nothing is measured again for the report.", size=8.5)
    pdf.para("Photos: each is checked for capture quality, the face and 478 landmarks are found "
             "(MediaPipe Face Landmarker), and skin regions are built from landmark polygons "
             "restricted to skin. Physical sizes assume an iris-to-iris distance of 63 mm. "
             "Colour is corrected with a colour checker when one is in the photo, otherwise "
             "normalised to the background (uncalibrated: absolute colour values are "
             "approximate).", size=8.5)
    pdf.para("Alignment: a robust similarity on landmarks that do not move with expression, "
             "refined by ECC (homography) on locally normalised skin texture, with checks "
             "(landmark residual, texture correlation, visible skin, head pose). Comparisons "
             "measure each photo in its own pixels on the skin visible in both.", size=8.5)
    prov = mdc.get("provenance") or {}
    if not mdc.get("summary") and not mdc.get("metrics"):
        mdc_text = ("Detectable change: no calibration of the minimal detectable change (MDC) "
                    "is installed" + (f" ({Path(str(prov['missing'])).name} is missing)"
                                      if prov.get("missing") else "")
                    + ", so changes are reported as 'not calibrated'.")
    else:
        mdc_text = ("Detectable change: a change is detectable when its size exceeds the minimal "
                    "detectable change (MDC: the larger of 1.96 × the root mean square and the 95th "
                    "percentile of |change| between retaken photos of unchanged skin). Calibration: "
                    + "; ".join(f"{k}: {v}" for k, v in prov.items()) + ".")
    pdf.para(mdc_text, size=8.5)
    pdf.para("Status words:\n" + "\n".join(f"• {k}: {v}" for k, v in STATUS_LEGEND), size=8.5)

    pdf.h2("Metric definitions")
    rows = []
    for m in REGISTRY.values():
        regions = "all" if tuple(m.regions) == ALL_REGIONS else ", ".join(
            r.replace("_", " ") for r in m.regions)
        rows.append([m.name, m.unit, f"larger = {m.direction}", regions,
                     f"{m.summary_line} {m.reference}"])
    pdf.table(["Metric", "Unit", "Direction", "Regions", "Definition and method"], rows,
              [34, 13, 24, 24, 85], size=6.5)
    stored = {name for c in course.comparisons for reg in
              ((c.get("result") or {}).get("regions") or {}).values() for name in reg}
    unknown = sorted(stored - set(REGISTRY))
    if unknown:
        pdf.para("Metrics in stored results that the current version no longer defines "
                 "(from an older algorithm version): " + ", ".join(unknown) + ".", size=8)
    pdf.para("Summary indices: texture = texture_index, redness = redness_index, "
             "pigmentation = pigmentation_index (absolute values; larger = more of the concern). "
             "OD is natural-log optical density; mOD = OD/1000. Elasticity and firmness cannot be "
             "measured from photos and are not reported.", size=8)
    pdf.h2("Statement")
    pdf.para(NOT_A_DIAGNOSIS, size=9, style="B")


def render_report(course: Course, frames_by_view: dict[str, list[Frame]], *,
                  include_name: bool = False, mdc: dict | None = None,
                  generated: datetime | None = None, change_maps: tuple | None = None) -> bytes:
    """The PDF bytes of a course (see the module docstring for the pages);
    ``change_maps`` is ``(visit, maps)`` from :func:`analyzer.report.frames.latest_change_maps`."""
    from ..compare import course_mdc

    if mdc is None:
        mdc = course_mdc(((p.latest_analysis.result or {}).get("summary") or {}).get("px_per_mm")
                         for _, p in course.series() if p.latest_analysis is not None)
    generated = generated or datetime.now(timezone.utc)
    running = (f"Skin progress report · {course.clinic_name or 'Clinic'} · "
               f"patient {course.patient.code}")
    pdf = _PDF(f"Skin progress report {course.patient.code}", running)
    _first_page(pdf, course, include_name=include_name, generated=generated)
    _photo_pages(pdf, course, frames_by_view)
    _change_page(pdf, course)
    _change_maps(pdf, course, change_maps)
    _charts(pdf, course, mdc)
    _metric_tables(pdf, course)
    _methods(pdf, course, mdc)
    return pdf.bytes()
