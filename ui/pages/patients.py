"""Patient list with search; new patient."""
import datetime as dt

import streamlit as st

from analyzer.errors import AnalyzerError
from ui import common

principal = common.require_principal()
gw = common.gateway()
st.title("Patients")

search = st.text_input("Search by code or name", key="patient_search",
                       placeholder="e.g. DEMO or a name")
patients = gw.list_patients(search=search or None)
if not patients:
    st.info("No patients found." if search else
            "No patients yet: add one below, or load the demo with `python -m analyzer demo`.")
for p in patients:
    visits = gw.patient_timeline(p.id)
    last = visits[-1].visit_date.isoformat() if visits else "—"
    c1, c2, c3, c4 = st.columns([2, 3, 2, 1])
    c1.markdown(f"**{p.code}**")
    c2.write(p.name or "")
    c3.write(f"{len(visits)} visits, last {last}")
    if c4.button("Open", key=f"open_patient_{p.id}"):
        st.session_state.patient_id = p.id
        common.go("record.py")

if principal.can_write:
    with st.expander("New patient", expanded=not patients and not search):
        with st.form("new_patient_form", clear_on_submit=True):
            code = st.text_input("Patient code (pseudonymous)", key="np_code")
            name = st.text_input("Name (optional)", key="np_name")
            skin = st.selectbox("Fitzpatrick skin type", ["", "I", "II", "III", "IV", "V", "VI"],
                                key="np_skin")
            consent = st.checkbox("Consent to photos and analysis given", key="np_consent")
            consent_date = st.date_input("Consent date", value=dt.date.today(),
                                         key="np_consent_date")
            if st.form_submit_button("Add patient"):
                try:
                    rec = gw.create_patient(code, name=name or None, skin_type=skin or None,
                                            consent=consent,
                                            consent_date=consent_date if consent else None,
                                            clinic_id=principal.clinic_id)
                except AnalyzerError as exc:
                    st.error(str(exc))
                else:
                    st.session_state.patient_id = rec.id
                    st.success(f"Patient {rec.code} added.")
                    common.go("record.py")
