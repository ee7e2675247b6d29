"""Sign in (practitioners, clinic staff)."""
import time

import streamlit as st

from analyzer import dashboard_data as dd
from analyzer.errors import AnalyzerError
from ui import common

common.init_state()
st.title("Skin progress analyzer")
st.subheader("Sign in")
if msg := st.session_state.pop("signout_message", None):
    st.info(msg)

with st.form("signin_form"):
    username = st.text_input("User name", key="signin_user", autocomplete="username")
    password = st.text_input("Password", type="password", key="signin_password",
                             autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    try:
        principal = dd.sign_in(common.store(), username, password)
    except AnalyzerError as exc:
        st.error(str(exc))
    else:
        now = time.time()
        st.session_state.principal = principal
        st.session_state.signed_in_at = now
        st.session_state.last_seen = now
        st.rerun()

path = dd.demo_credentials_path(common.settings())
st.caption(f"Demo: user **demo**; its password was printed by `scripts/start.sh` "
           f"(`python -m analyzer demo`) and is in `{path}`.")
