"""A patient's own progress, opened through a share link (read-only)."""
import streamlit as st

from analyzer import dashboard_data as dd
from analyzer.errors import AnalyzerError
from ui import charts, common

common.init_state()
token = st.query_params.get("share", "")
if st.session_state.share_token != token or st.session_state.share_principal is None:
    try:
        st.session_state.share_principal = dd.open_share(common.store(), token)
        st.session_state.share_token = token
    except AnalyzerError as exc:
        st.session_state.share_principal = None
        st.title("Your skin progress")
        st.error(f"This link cannot be opened: {exc}. Please ask your clinic for a new link.")
        st.stop()
principal = st.session_state.share_principal
gw = common.gateway(principal)
key = common.who(principal)
try:
    timeline = gw.patient_timeline(principal.patient_id)
except AnalyzerError as exc:
    st.error(str(exc))
    st.stop()
visits = dd.comparable_visits(timeline)

st.title("Your skin progress")
if not visits:
    st.info("Your photos have not been analysed yet.")
    st.stop()
first, last = visits[0], visits[-1]
st.caption(f"First visit {first.visit_date.isoformat()} · latest {last.visit_date.isoformat()} · "
           f"{sum(1 for v in timeline if dd.is_treatment(v))} treatment sessions")

pairs = dd.baseline_comparisons(gw, principal.patient_id, timeline)
if pairs:
    by_id = {v.id: (v, c) for v, c in pairs}
    if st.session_state.get("pv_visit") not in by_id:
        st.session_state["pv_visit"] = pairs[-1][0].id
    chosen = st.selectbox("Compare your first visit with", list(by_id), key="pv_visit",
                          format_func=lambda i: by_id[i][0].visit_date.isoformat())
    visit, comp = by_id[chosen]
    st.subheader(f"Since your first visit ({visit.visit_date.isoformat()})")
    for line in dd.plain_summary(comp["result"]):
        st.markdown(f"- {line}")
    pics = common.pair_pictures(gw, key, comp["id"], comp["baseline_photo_id"],
                                comp["followup_photo_id"], comp["result"])
    common.before_after(pics, f"first visit {first.visit_date.isoformat()}",
                        visit.visit_date.isoformat(), height=480)
elif len(visits) >= 2:
    st.info("Your clinic has not prepared a comparison yet.")

st.subheader("Over time")
rows = dd.progress_rows(timeline, comparisons=[c for _, c in pairs])
treatments = dd.treatment_rows(timeline)
bands = dd.noise_bands(rows)
st.caption("Dashed lines: your treatment sessions. Grey band: changes smaller than this "
           "cannot be told apart from differences between photos.")
for k in dd.SUMMARY_KEYS:
    chart = charts.progress_chart(rows, treatments, bands, dd.METRIC_LABELS[k], height=180)
    if chart is not None:
        st.altair_chart(chart, key=f"patient_chart_{k}")
st.caption("Measured from your photos; these are not medical diagnoses. Elasticity and "
           "firmness cannot be measured from photos.")

st.subheader("Your report")
common.downloads(gw, principal.patient_id, None, staff=False)
