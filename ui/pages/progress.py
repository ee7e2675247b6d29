"""Progress charts of each metric over the visits."""
import pandas as pd
import streamlit as st

from analyzer import dashboard_data as dd
from ui import charts, common

principal = common.require_principal()
gw = common.gateway()
patient = common.require_patient(gw)
timeline = gw.patient_timeline(patient.id)

st.title(f"Progress · {patient.code}")
region = st.selectbox("Region", dd.REGION_NAMES, key="progress_region",
                      format_func=lambda r: common.REGION_LABELS[r])
rows = dd.progress_rows(timeline, region, gw.comparisons(patient.id))
if not rows:
    st.info("No analysed photos yet.")
    st.stop()
treatments = dd.treatment_rows(timeline)
bands = dd.noise_bands(rows)
st.caption("Dashed red lines: treatment sessions. Each later visit is drawn as the first "
           "visit's value plus the change measured between the two photos on the skin both "
           "show (a photo's own value only where no trusted comparison exists; see the point's "
           "tooltip). Grey band: first visit ± the smallest change that can be told from "
           "retake noise (MDC); points inside it are not a detectable change. It is wider at "
           "visits whose photo was saved differently from the first (other camera or JPEG "
           "setting) or has no trusted comparison (its own value varies more)."
           + ("" if bands else " The noise band is not calibrated on this installation."))
for key in dd.SUMMARY_KEYS:
    label = dd.METRIC_LABELS[key]
    chart = charts.progress_chart(rows, treatments, bands, label,
                                  title=f"{label} ({common.REGION_LABELS[region]})")
    if chart is not None:
        st.altair_chart(chart, key=f"progress_chart_{key}")

st.subheader("Notes")
for v in timeline:
    if v.notes or v.post_care:
        st.markdown(f"**{v.visit_date.isoformat()}** · {dd.treatment_text(v)}"
                    + (f"  \n{v.notes}" if v.notes else "")
                    + (f"  \n*Post-care:* {v.post_care}" if v.post_care else ""))
st.dataframe(pd.DataFrame(rows).pivot_table(index="date", columns="metric", values="value"),
             key="progress_table")
