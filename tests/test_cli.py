import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_images" / "astronaut_face.jpg"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_analyze_sample_json(tmp_path):
    overlay = tmp_path / "regions.png"
    proc = run_cli("analyze", SAMPLE, "--json", "--regions-out", overlay, "--maps-out", tmp_path / "maps")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["face"]["landmarks"] == 478
    assert result["quality"]["overall"] in ("pass", "warn")
    assert set(result["summary"]) >= {"texture", "redness", "pigmentation"}
    assert result["regions"]["left_cheek"]["area_px"] > 5000
    assert result["algorithm_version"]
    assert Image.open(overlay).size == Image.open(SAMPLE).size
    maps = {p.name: Image.open(p) for p in (tmp_path / "maps").iterdir()}
    assert sorted(maps) == ["pigmentation.png", "redness.png", "texture.png"]
    assert len({m.size for m in maps.values()}) == 1      # the same face crop
    assert proc.stderr == ""


def test_text_output(face_rgb, tmp_path):
    p = tmp_path / "face.png"
    Image.fromarray(face_rgb).save(p)
    proc = run_cli("analyze", p)
    assert proc.returncode == 0, proc.stderr
    assert "quality:" in proc.stdout and "478 landmarks" in proc.stdout


def write_truncated(p):
    arr = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(arr).save(p, "JPEG")
    p.write_bytes(p.read_bytes()[:4000])


@pytest.mark.parametrize("case,expect", [
    ("missing", "file not found"),
    ("text", "not an image"),
    ("truncated", "truncated or damaged"),
    ("noface", "no face found"),
    ("huge", "too large"),
])
def test_bad_input_one_line_exit_2(case, expect, tmp_path):
    p = tmp_path / "photo.jpg"
    env_limit = None
    if case == "text":
        p.write_text("hello")
    elif case == "truncated":
        write_truncated(p)
    elif case == "noface":
        Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(p)
    elif case == "huge":
        Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(p)
        env_limit = "1000"
    env = None
    if env_limit:
        import os
        env = dict(os.environ, ANALYZER_MAX_PIXELS=env_limit)
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(p)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert expect in proc.stderr
    assert "Traceback" not in proc.stderr


def test_maps_out_onto_a_file_is_one_line_exit_2(tmp_path):
    taken = tmp_path / "maps"
    taken.write_text("not a folder")
    proc = run_cli("analyze", SAMPLE, "--maps-out", taken)
    assert proc.returncode == 2 and "give a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert taken.read_text() == "not a folder"
