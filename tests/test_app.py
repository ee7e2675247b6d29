from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.mark.slow
def test_app_analyses_sample():
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception
    assert any("Capture quality" in h.value for h in at.subheader)
