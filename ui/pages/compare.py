"""Before/after comparison of any two visits."""
import pandas as pd
import streamlit as st

from analyzer import dashboard_data as dd
from analyzer import views
from analyzer.errors import AnalyzerError
from ui import common

principal = common.require_principal()
gw = common.gateway()
patient = common.require_patient(gw)
key = common.who(principal)
timeline = gw.patient_timeline(patient.id)
visits = dd.comparable_visits(timeline)

st.title(f"Compare · {patient.code}")
if len(visits) < 2:
    st.info("Two visits with analysed photos are needed for a comparison.")
    st.stop()


by_id = {v.id: v for v in visits}


def label(visit_id):
    v = by_id[visit_id]
    return f"{v.visit_date.isoformat()} · {dd.treatment_text(v)}"


c1, c2 = st.columns(2)
before_ids = [v.id for v in visits[:-1]]
if st.session_state.get("cmp_before") not in before_ids:
    st.session_state["cmp_before"] = before_ids[0]
before = by_id[c1.selectbox("Before", before_ids, key="cmp_before", format_func=label)]
later = [v.id for v in visits if v.visit_date > before.visit_date] or [visits[-1].id]
if st.session_state.get("cmp_after") not in later:
    st.session_state["cmp_after"] = later[-1]
after = by_id[c2.selectbox("After", later, key="cmp_after", format_func=label)]
b_photo, f_photo = dd.frontal_photo(before), dd.frontal_photo(after)
for column, photo in ((c1, b_photo), (c2, f_photo)):
    column.caption(dd.capture_text(photo.latest_analysis.result) or "capture not recorded")

try:
    with st.spinner("Comparing (first time only; the result is stored)…"):
        comp = dd.ensure_comparison(gw, patient.id, b_photo.id, f_photo.id,
                                    days_since=dd.days_since_treatment(timeline, after.visit_date))
except AnalyzerError as exc:
    st.error(str(exc))
    st.stop()
result = comp["result"]
al = result.get("alignment") or {}
if not al.get("ok", True):
    st.warning(f"Alignment not trusted: {al.get('reason')}")
for flag in result.get("flags") or []:
    if not flag.startswith(("baseline: colour", "follow-up: colour")):
        st.caption(f"ℹ️ {flag}")

st.subheader("What changed")
st.dataframe(pd.DataFrame(dd.change_table(result)), hide_index=True, key="cmp_change_table")
since = ("your first visit" if before.id == visits[0].id
         else f"the visit of {before.visit_date.isoformat()}")
for line in dd.plain_summary(result, since):
    st.markdown(f"- {line}")

pics = common.pair_pictures(gw, key, comp["id"], b_photo.id, f_photo.id, result)
tab_slider, tab_side, tab_maps, tab_sources, tab_align, tab_regions = st.tabs(
    ["Slider", "Side by side", "Change maps", "Where each index comes from", "Alignment", "Regions"])
with tab_slider:
    common.before_after(pics, before.visit_date.isoformat(), after.visit_date.isoformat())
with tab_side:
    s1, s2 = st.columns(2)
    s1.image(pics["before"], caption=f"before · {before.visit_date.isoformat()}")
    s2.image(pics["after"], caption=f"after · {after.visit_date.isoformat()} (aligned to before)")
with tab_maps:
    st.caption("Change from before to after on skin seen in both photos: blue = less, "
               "green = no change, red = more (fixed colour limits: "
               + ", ".join(f"{k} ±{v:g} {views.CHANGE_UNITS[k]}" for k, v in views.CHANGE_LIMITS.items())
               + ").")
    st.image(views.legend(), caption="less ← no change → more")
    m1, m2, m3 = st.columns(3)
    m1.image(pics["maps"]["redness"], caption="Redness change")
    m2.image(pics["maps"]["pigmentation"], caption="Pigmentation change")
    m3.image(pics["maps"]["texture"], caption="Texture change")
with tab_sources:
    st.caption("What each summary index averages, per photo, with colour limits fixed for every "
               "photo (" + ", ".join(f"{k}: {views.MAP_LABELS[k]}, {lo:g}–{hi:g} {views.MAP_UNITS[k]}"
                                     for k, (lo, hi) in views.MAP_LIMITS.items())
               + "). Pigmentation is drawn only where melanin stands out from the skin around it.")
    st.image(views.legend(), caption="low ← → high")
    own_maps = [common.photo_maps(gw, key, p.id, p.latest_analysis.id,
                                  (p.latest_analysis.result or {}).get("summary") or {})
                for p in (b_photo, f_photo)]
    for concern in views.MAP_LIMITS:
        p1, p2 = st.columns(2)
        p1.image(own_maps[0][concern], caption=f"{concern.capitalize()} · before")
        p2.image(own_maps[1][concern], caption=f"{concern.capitalize()} · after")
with tab_align:
    st.image(pics["overlay"], caption="Left: checkerboard of before and aligned after; right: "
                                      "before in red, after in cyan (grey where they agree).")
    st.json({k: al.get(k) for k in ("ok", "method", "residual_px", "ncc", "reason")},
            expanded=False)
with tab_regions:
    region = st.selectbox("Region", dd.REGION_NAMES, key="cmp_region",
                          format_func=lambda r: common.REGION_LABELS[r])
    r1, r2 = st.columns([2, 3])
    r1.image(common.region_picture(gw, key, b_photo.id, region), caption=common.REGION_LABELS[region])
    rows = dd.region_table(result, region)
    if rows:
        r2.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_region_table")
    else:
        r2.info("This region was not measured in both photos.")

st.subheader("Report and export")
common.downloads(gw, patient.id, patient.code, staff=True)
