"""Streamlit dashboard: ``streamlit run app.py`` (UI only: the library measures,
the store keeps the records).

Practitioners sign in and see the patient list, a patient's record (visits,
photo upload), comparisons and progress charts.  A patient opens
``?share=TOKEN`` and sees only their own progress, read-only.
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")

import streamlit as st  # noqa: E402

from analyzer.errors import AnalyzerError  # noqa: E402
from ui import common  # noqa: E402

st.set_page_config(page_title="Skin progress analyzer", page_icon=":material/face:", layout="wide")
common.init_state()
P = common.PAGES

if st.query_params.get("share"):
    nav = st.navigation([st.Page(P / "patient_view.py", title="Your progress", icon=":material/trending_up:",
                                 url_path="my-progress", default=True)], position="hidden")
elif common.current_principal() is None:
    nav = st.navigation([st.Page(P / "sign_in.py", title="Sign in", icon=":material/login:", default=True)],
                        position="hidden")
else:
    principal = st.session_state.principal
    nav = st.navigation({"Clinic": [
        st.Page(P / "patients.py", title="Patients", icon=":material/group:", default=True),
        st.Page(P / "record.py", title="Patient record", icon=":material/folder_shared:"),
        st.Page(P / "compare.py", title="Compare visits", icon=":material/compare:"),
        st.Page(P / "progress.py", title="Progress", icon=":material/trending_up:"),
    ]})
    with st.sidebar:
        st.caption(f"Signed in as **{principal.username}** ({principal.role})")
        if st.session_state.patient_id is not None:
            try:
                st.caption(f"Patient: **{common.gateway().get_patient(st.session_state.patient_id).code}**")
            except AnalyzerError:  # erased meanwhile, or not allowed
                st.session_state.patient_id = None
        if st.button("Sign out", key="sign_out"):
            common.sign_out()
            st.rerun()
nav.run()
