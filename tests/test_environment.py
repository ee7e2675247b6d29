"""The installed environment is the one requirements.txt describes."""
from importlib import metadata
from pathlib import Path

import cv2

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"


def pinned() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def test_one_consistent_cv2_build():
    pins = pinned()
    contrib = pins["opencv-contrib-python"]
    assert metadata.version("opencv-contrib-python") == contrib
    # cv2.__version__ is e.g. "5.1.0" for wheel "5.1.0.95"
    assert contrib.startswith(cv2.__version__)
    assert hasattr(cv2, "mcc"), "contrib module cv2.mcc (colour checker) is missing"
    for other in ("opencv-python", "opencv-python-headless", "opencv-contrib-python-headless"):
        try:
            metadata.version(other)
        except metadata.PackageNotFoundError:
            continue
        raise AssertionError(f"{other} is installed beside opencv-contrib-python")


def test_installed_versions_match_pins():
    for name, version in pinned().items():
        assert metadata.version(name) == version, name


def test_library_never_imports_streamlit():
    root = Path(__file__).resolve().parents[1] / "analyzer"
    offenders = [p.name for p in root.rglob("*.py") if "import streamlit" in p.read_text()]
    assert offenders == []
