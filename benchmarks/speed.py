"""Speed and memory of analyze / compare on 12 MP phone photos, as ratios to JPEG decode.

Makes a 4000×3000 JPEG (quality 92) of the phantom face and a retake of it,
then measures in one run: JPEG decode time, ``analyze`` time, ``compare``
time, peak RSS, and a landmark-only alignment baseline (MediaPipe landmarks +
similarity warp, what face-timelapse tools do).  Prints ``analyze/decode``,
``compare/decode`` and peak memory.  Ratios, not seconds, are the targets
(analyze ≤ 10× decode, compare ≤ 20× decode, peak RSS ≤ 1.5 GB), because
these machines are shared and noisy.

Run: ``.venv/bin/python benchmarks/speed.py [--repeat 3] [--megapixels 12]``
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GLOG_minloglevel", "2")


def phone_photo(width: int, height: int, seed: int, strength: float) -> bytes:
    """A phone-sized JPEG of the phantom face with retake variance."""
    from analyzer.intake import encode_jpeg
    from analyzer.phantom import Capture, make_face, photograph

    face = make_face(scale=8.0, seed=0)
    rgb, _ = photograph(face, [], Capture.random(np.random.default_rng(seed), strength), seed=seed)
    h, w = rgb.shape[:2]
    s = max(width / w, height / h)
    big = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return encode_jpeg(big[y0:y0 + height, x0:x0 + width], quality=92)


def best_of(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def landmark_only(baseline_face, followup_face, followup_rgb, shape):
    """What timelapse tools do: similarity from landmarks, then warp."""
    m, _ = cv2.estimateAffinePartial2D(followup_face.points, baseline_face.points, method=cv2.LMEDS)
    return cv2.warpAffine(followup_rgb, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="speed benchmark")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args(argv)
    from analyzer.align import align
    from analyzer.compare import compare_analysed
    from analyzer.face import get_landmarker
    from analyzer.intake import load_photo
    from analyzer.pipeline import analyze, compare

    width = int(round(np.sqrt(args.megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    # render the test photos in a child process: the phantom's rendering memory is not ours
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        baseline_jpeg, followup_jpeg = pool.map(phone_photo, [width] * 2, [height] * 2, [1, 2], [0.5, 0.5])
    get_landmarker()  # model load is start-up, not per photo
    decode_s, _ = best_of(lambda: cv2.imdecode(np.frombuffer(baseline_jpeg, np.uint8), cv2.IMREAD_COLOR),
                          args.repeat)
    intake_s, _ = best_of(lambda: load_photo(baseline_jpeg), args.repeat)
    analyze_s, base = best_of(lambda: analyze(baseline_jpeg), args.repeat)
    follow = analyze(followup_jpeg)
    compare_s, _ = best_of(lambda: compare(baseline_jpeg, followup_jpeg), args.repeat)
    lm_s, _ = best_of(lambda: landmark_only(base.face, follow.face, follow.photo.pixels,
                                            base.photo.pixels.shape), args.repeat)
    given_s, _ = best_of(lambda: compare_analysed(base, follow), args.repeat)
    align_s, _ = best_of(lambda: align(base.photo.pixels, follow.photo.pixels, baseline_face=base.face,
                                       followup_face=follow.face, baseline_regions=base.regions,
                                       followup_regions=follow.regions), args.repeat)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"photo {width}×{height} ({width * height / 1e6:.1f} MP), JPEG q92, "
          f"{len(baseline_jpeg) / 1e6:.1f} MB; best of {args.repeat}")
    print(f"decode (cv2.imdecode)     {decode_s * 1000:8.1f} ms")
    print(f"intake (load_photo)       {intake_s * 1000:8.1f} ms   intake/decode  {intake_s / decode_s:5.1f}")
    print(f"analyze                   {analyze_s * 1000:8.1f} ms   analyze/decode {analyze_s / decode_s:5.1f}  (target ≤ 10)")
    print(f"compare (2 analyses, align){compare_s * 1000:8.1f} ms   compare/decode {compare_s / decode_s:5.1f}  (target ≤ 20)")
    print(f"  of which compare_analysed {given_s * 1000:6.1f} ms   (analyses given: align + metrics on common skin)")
    print(f"  of which align          {align_s * 1000:8.1f} ms   align/decode   {align_s / decode_s:5.1f}")
    print(f"landmark-only warp        {lm_s * 1000:8.1f} ms   (baseline of timelapse tools, landmarks given)")
    print(f"peak RSS                  {peak_mb:8.0f} MB   (target ≤ 1536; whole benchmark process, "
          "test photos rendered in a child process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
