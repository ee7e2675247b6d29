"""Regenerate sample_images/ from the skin phantom (deterministic).

Run: .venv/bin/python scripts/make_samples.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer.intake import encode_jpeg  # noqa: E402
from analyzer.phantom import TONES, base_face, demo_course, make_face, write_series  # noqa: E402

# (folder, tone, seed): two demo patients with different skin.
PATIENTS = (("demo_patient_a", "light", 1), ("demo_patient_b", "dark", 2))


def main() -> None:
    out = ROOT / "sample_images"
    out.mkdir(exist_ok=True)
    (out / "astronaut_face.jpg").write_bytes(encode_jpeg(base_face(scale=6.0, seed=0), quality=90))
    for folder, tone, seed in PATIENTS:
        face = make_face(scale=6.0, seed=seed, tone=TONES[tone])
        write_series(out / folder, face, demo_course(), seed=seed, capture_strength=0.5)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
