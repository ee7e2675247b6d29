"""One patient's record: visit timeline, new visit, photo upload, share link."""
import datetime as dt

import pandas as pd
import streamlit as st

from analyzer import dashboard_data as dd
from analyzer.errors import AnalyzerError
from ui import common

principal = common.require_principal()
gw = common.gateway()
patient = common.require_patient(gw)
key = common.who(principal)
timeline = gw.patient_timeline(patient.id)

st.title(f"{patient.code}" + (f" — {patient.name}" if patient.name else ""))
st.caption(f"Skin type {patient.skin_type or '—'} · consent "
           f"{'given ' + str(patient.consent_date or '') if patient.consent else 'NOT recorded'}")

# ---------------------------------------------------------------- timeline
st.subheader("Visit timeline")
if not timeline:
    st.info("No visits yet: add the first (baseline) visit below.")
else:
    st.dataframe(pd.DataFrame(dd.timeline_rows(timeline)), hide_index=True, key="timeline_table",
                 column_config={"texture": st.column_config.NumberColumn(format="%.2f"),
                                "redness": st.column_config.NumberColumn(format="%.3f"),
                                "pigmentation": st.column_config.NumberColumn(format="%.3f")})
    for v in reversed(timeline):
        with st.expander(f"{v.visit_date.isoformat()} · {dd.treatment_text(v)}"):
            if v.notes:
                st.markdown(f"**Notes:** {v.notes}")
            if v.post_care:
                st.markdown(f"**Post-care:** {v.post_care}")
            cols = st.columns(max(1, min(4, len(v.photos))))
            for i, ph in enumerate(v.photos):
                a = ph.latest_analysis
                cap = f"{ph.view} · quality {a.quality_overall if a and a.status == 'ok' else 'analysis failed'}"
                cols[i % len(cols)].image(common.photo_thumb(gw, key, ph.id), caption=cap)

# ---------------------------------------------------------------- new visit
if principal.can_write:
    with st.expander("New visit", expanded=not timeline):
        with st.form("visit_form", clear_on_submit=True):
            c1, c2 = st.columns(2)
            day = c1.date_input("Date", value=dt.date.today(), key="visit_date")
            procedure = c2.text_input("Procedure", value="micro-needling", key="visit_procedure")
            device = c1.text_input("Device", key="visit_device")
            depth = c2.number_input("Needle depth (mm)", 0.0, 5.0, 1.0, 0.25, key="visit_depth")
            passes = c1.number_input("Passes", 0, 50, 3, key="visit_passes")
            serum = c2.text_input("Serum / PRP", key="visit_serum")
            notes = st.text_area("Notes", key="visit_notes")
            post_care = st.text_area("Post-care", key="visit_post_care")
            photo_only = st.checkbox("Photo visit only (no treatment)", key="visit_photo_only")
            if st.form_submit_button("Add visit"):
                treatment = {} if photo_only else dict(
                    procedure=procedure or None, device=device or None, needle_depth_mm=depth,
                    passes=int(passes), serum=serum or None)
                try:
                    new = gw.add_visit(patient.id, day, notes=notes or None,
                                       post_care=post_care or None, **treatment)
                except AnalyzerError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["upload_visit"] = new.id  # upload to the new visit
                    st.success(f"Visit on {day.isoformat()} added.")
                    st.rerun()

# What keeps two visits comparable (README "Photographing for comparison", from the phantom)
CAPTURE_GUIDE = """
- The **same phone or camera** and the same way of saving at every visit (one format and JPEG setting).
- The **same lamps and a plain backdrop** around the head, lit like the face; a ColorChecker in frame if you have one.
- **Enough light** for a low ISO, the same at every visit; expose brightly without clipping the skin.
- The **face large** in the frame, in the **baseline's pose and framing** (shown beside), neutral expression.
- **Clean skin**; photograph before a session (redness lasts a few days after one).
- Upload **before the patient leaves**: a follow-up is compared at once and you are told what a retake would fix.
"""

# ---------------------------------------------------------------- upload
if principal.can_write and timeline:
    st.subheader("Add photos")
    left, right = st.columns([3, 2])
    with left:
        by_id = {v.id: v for v in reversed(timeline)}
        if st.session_state.get("upload_visit") not in by_id:
            st.session_state["upload_visit"] = next(iter(by_id))
        visit = by_id[st.selectbox(
            "Visit", list(by_id), key="upload_visit",
            format_func=lambda i: f"{by_id[i].visit_date.isoformat()} · {dd.treatment_text(by_id[i])}")]
        view = st.selectbox("View", ["frontal", "left_45", "right_45"], key="upload_view")
        with st.expander("How to photograph for comparison"):
            st.markdown(CAPTURE_GUIDE)
        files = st.file_uploader(
            "Photos (drag and drop, several at once; JPEG, PNG, WebP, TIFF, phone HEIC)",
            type=["jpg", "jpeg", "png", "webp", "tif", "tiff", "heic", "heif"],
            accept_multiple_files=True, key=f"upload_files_{st.session_state.upload_round}")
        if st.button("Store and analyse", key="upload_go", type="primary", disabled=not files):
            bar = st.progress(0.0, text="Analysing…")
            results = []
            for i, f in enumerate(files):
                bar.progress(i / len(files), text=f"Analysing {f.name} ({i + 1}/{len(files)})…")
                r = dd.upload_photo(gw, visit.id, f.name, f.getvalue(), view=view)
                if r.ok and r.quality != "fail" and view == "frontal":
                    bar.progress((i + 0.5) / len(files),
                                 text=f"Comparing {f.name} with the baseline ({i + 1}/{len(files)})…")
                    try:
                        r.retake = dd.compare_with_baseline(gw, patient.id, r.photo_id)[1]
                    except AnalyzerError as exc:
                        r.message = f"not compared with the baseline: {exc}"
                results.append(r)
            bar.progress(1.0, text="Done")
            st.session_state.upload_results = results
            st.session_state.upload_round += 1
            st.rerun()
    with right:
        base_visit = next((v for v in timeline if dd.frontal_photo(v)), None)
        if base_visit is not None:
            st.image(common.photo_thumb(gw, key, dd.frontal_photo(base_visit).id),
                     caption=f"Baseline {base_visit.visit_date.isoformat()}: match this framing, "
                             "distance and light")
        else:
            st.caption("The first analysed photo becomes the framing reference.")
    icons = {"pass": "✅", "warn": "⚠️", "fail": "❌"}
    for r in st.session_state.upload_results or []:
        if not r.ok:
            st.error(f"{r.name}: {r.message}")
            continue
        head = f"{r.name}: capture quality **{r.quality}**" + (" (already stored)" if r.duplicate else "")
        if r.message.startswith("not compared"):
            head += f" — {r.message}"
        (st.success if r.quality == "pass" else st.warning)(head)
        for item in r.items or []:
            if item["status"] != "pass":
                st.markdown(f"{icons.get(item['status'], '')} {item['name']}: {item['value']} "
                            f"{item['unit']} — {item['advice']}")
        if r.quality == "fail":
            st.markdown("**Retake advised** before comparing this photo.")
        if r.retake:
            st.warning("Compared with the baseline — a retake now would compare better:\n\n"
                       + "\n".join(f"- {line}" for line in r.retake))

# ---------------------------------------------------------------- share link
st.subheader("Patient share link")
if not callable(getattr(gw.store, "create_share_link", None)):
    st.caption("Share links need the access-control module (not installed here).")
elif principal.can_write:
    days = st.number_input("Valid for (days)", 1, 365, 30, key="share_days")
    if st.button("Create share link", key="share_create"):
        try:
            token = gw.create_share_link(patient.id, days=int(days))
        except AnalyzerError as exc:
            st.error(str(exc))
        else:
            st.session_state.new_share_link = token
    if st.session_state.new_share_link:
        st.success("Send this link to the patient. It is shown only once.")
        st.code(common.share_url(st.session_state.new_share_link), language=None)
        if st.button("I have copied it", key="share_done"):
            st.session_state.new_share_link = None
            st.rerun()
    if callable(getattr(gw.store, "list_share_links", None)):
        for link in gw.list_share_links(patient.id):
            state = "active" if link.active else ("revoked" if link.revoked_at else "expired")
            c1, c2 = st.columns([4, 1])
            c1.caption(f"Link {link.id} · created {link.created_at:%Y-%m-%d} · expires "
                       f"{link.expires_at:%Y-%m-%d} · {state}"
                       + (f" · last opened {link.last_used_at:%Y-%m-%d}" if link.last_used_at else ""))
            if link.active and c2.button("Revoke", key=f"share_revoke_{link.id}"):
                gw.revoke_share_link(link.id)
                st.rerun()
