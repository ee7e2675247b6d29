"""Every stored metric of a patient or a clinic as CSV or JSON (one row per
photo × region × metric), for researchers and records.  No names, no images."""
from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone

from ..errors import ReportError

COLUMNS = ("clinic_id", "patient_code", "visit_id", "visit_date", "day", "treatment",
           "photo_id", "view", "analysis_id", "algorithm_version", "analysed_at", "quality",
           "region", "metric", "value", "unit", "direction")
FORMATS = ("csv", "json")
EXPORT_FORMAT = 1


def metric_rows(store, patients, *, actor, all_analyses: bool = False) -> list[dict]:
    """Rows (dicts keyed by :data:`COLUMNS`) of the given patient records.

    Parameters
    ----------
    all_analyses : bool
        Every stored analysis of each photo (e.g. several algorithm versions);
        default only each photo's latest successful one.
    """
    from .course import treatment_text

    rows: list[dict] = []
    for patient in patients:
        timeline = store.patient_timeline(patient.id, actor=actor)
        first = timeline[0].visit_date if timeline else None
        for visit in timeline:
            for photo in sorted(visit.photos, key=lambda p: p.id):
                if all_analyses:
                    analyses = [a for a in store.analyses(photo.id, actor=actor)
                                if a.status == "ok" and a.result]
                else:
                    a = photo.latest_analysis
                    analyses = [a] if a is not None and a.status == "ok" and a.result else []
                for a in analyses:
                    for m in a.result.get("metrics") or []:
                        value = m.get("value")
                        if isinstance(value, (int, float)) and not isinstance(value, bool):
                            value = float(value) if math.isfinite(value) else None
                        else:
                            value = None
                        rows.append({
                            "clinic_id": patient.clinic_id, "patient_code": patient.code,
                            "visit_id": visit.id, "visit_date": visit.visit_date.isoformat(),
                            "day": (visit.visit_date - first).days,
                            "treatment": treatment_text(visit), "photo_id": photo.id,
                            "view": photo.view, "analysis_id": a.id,
                            "algorithm_version": a.algorithm_version,
                            "analysed_at": a.created_at.isoformat() if a.created_at else None,
                            "quality": a.quality_overall, "region": m.get("region"),
                            "metric": m.get("name"), "value": value, "unit": m.get("unit"),
                            "direction": m.get("direction")})
    return rows


def encode(rows: list[dict], fmt: str, *, scope: dict | None = None) -> bytes:
    """CSV (header + rows, UTF-8) or JSON (``{"format", "exported_at", "scope",
    "columns", "algorithm_versions", "rows"}``) bytes."""
    fmt = check_format(fmt)
    if fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
        return buf.getvalue().encode("utf-8")
    doc = {"format": EXPORT_FORMAT,
           "exported_at": datetime.now(timezone.utc).isoformat(),
           "scope": scope or {}, "columns": list(COLUMNS),
           "algorithm_versions": sorted({str(r["algorithm_version"]) for r in rows}),
           "rows": [{k: r.get(k) for k in COLUMNS} for r in rows]}
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")


def check_format(fmt: str) -> str:
    """The lower-case format name, or ReportError."""
    norm = str(fmt or "").strip().lower().lstrip(".")
    if norm not in FORMATS:
        raise ReportError(f"unknown export format {fmt!r}; use csv or json")
    return norm
