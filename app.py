"""Streamlit dashboard (UI only: all measuring is done by ``analyzer``)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from analyzer.config import Settings
from analyzer.errors import AnalyzerError
from analyzer.pipeline import analyze
from analyzer.regions import draw_regions

SAMPLES = Path(__file__).with_name("sample_images")

st.set_page_config(page_title="Skin progress analyzer", layout="wide")
st.title("Skin progress analyzer")

settings = Settings.from_env()
samples = sorted(p.name for p in SAMPLES.glob("*.jpg"))
upload = st.file_uploader("Photo", type=["jpg", "jpeg", "png", "webp", "tif", "tiff", "heic", "heif"],
                          key="upload")
choice = st.selectbox("…or a sample photo", samples, key="sample") if samples else None
source = upload.getvalue() if upload is not None else (SAMPLES / choice if choice else None)

if source is not None:
    try:
        done = analyze(source, settings)
    except AnalyzerError as exc:
        st.error(str(exc))
    else:
        result = done.result
        left, right = st.columns(2)
        left.image(draw_regions(done.photo.pixels, done.regions), caption="Regions")
        right.subheader(f"Capture quality: {result.quality['overall']}")
        icons = {"pass": "✅", "warn": "⚠️", "fail": "❌"}
        for item in result.quality["items"]:
            text = f"{icons[item['status']]} **{item['name']}**: {item['value']} {item['unit']}"
            if item["status"] != "pass":
                text += f" — {item['advice']}"
            right.markdown(text)
        right.json(result.summary)
