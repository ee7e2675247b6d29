"""Alignment accuracy benchmark on the skin phantom (known transforms).

Each pair is a baseline photo (mild capture variance) and a follow-up with
rotation up to ±10°, scale 0.85–1.15, shift up to ±8 % of the width, mild
perspective, exposure ±20 %, white-balance shift, a sideways lighting
gradient up to ±25 %, noise and JPEG q80; some follow-ups carry skin changes.
The error of a transform is the mean distance, over the four image corners,
between where the found and the true follow-up → baseline transform send
them (baseline px).  Our method and landmark-only alignment are reported side
by side, then a few adversarial pairs that must be refused (``ok: false``).

Run::

    .venv/bin/python benchmarks/alignment.py [--pairs N] [--scale 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analyzer.align import align, apply_matrix, landmark_transform  # noqa: E402
from analyzer.errors import AlignmentError  # noqa: E402
from analyzer.face import get_landmarker  # noqa: E402
from analyzer.phantom import Capture, Change, make_face, photograph, true_transform  # noqa: E402

SILENT_PX = 3.0  # an ok=True result with a larger error is a silent failure
TONES = (0.0, 1.2, 2.0)  # light, tan, brown (melanin OD)
CHANGES = ([], [Change("redness", 0.3)], [Change("roughness", 0.7)],
           [Change("redness_patchy", 0.25), Change("pores", 0.8)], [Change("spots", 0.6)])
PAIRS_PER_FACE = 5


def corner_error(found: np.ndarray, true: np.ndarray, shape) -> float:
    """Mean distance (px) of the four image corners mapped by ``found`` vs ``true``."""
    h, w = shape[:2]
    c = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return float(np.linalg.norm(apply_matrix(found, c) - apply_matrix(true, c), axis=1).mean())


def face_error(found: np.ndarray, true: np.ndarray, box) -> float:
    """Mean error (baseline px) over a grid on the baseline face box ``(x, y, w, h)``."""
    x, y, w, h = box
    gx, gy = np.meshgrid(np.linspace(x, x + w, 9), np.linspace(y, y + h, 9))
    p = np.c_[gx.ravel(), gy.ravel()]
    q = apply_matrix(np.linalg.inv(true), p)  # the same skin in follow-up pixels
    return float(np.linalg.norm(apply_matrix(found, q) - p, axis=1).mean())


def random_captures(rng: np.random.Generator) -> tuple[Capture, Capture]:
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    baseline = Capture(angle_deg=u(-2, 2), scale=u(0.97, 1.03), shift=(u(-.02, .02), u(-.02, .02)),
                       exposure=u(0.9, 1.1), noise=u(0.5, 2.0), jpeg_quality=80)
    followup = Capture(angle_deg=u(-10, 10), scale=u(0.85, 1.15), shift=(u(-.08, .08), u(-.08, .08)),
                       tilt=(u(-1.5e-5, 1.5e-5), u(-1.5e-5, 1.5e-5)), exposure=u(0.8, 1.2),
                       white_balance=tuple(float(np.exp(v)) for v in rng.uniform(-0.08, 0.08, 3)),
                       gradient=u(-0.25, 0.25), noise=u(0.5, 2.5), jpeg_quality=80)
    return baseline, followup


def run_pair(b, f, true, shape) -> dict:
    lm = get_landmarker()
    t0 = time.perf_counter()
    lm_face = float("inf")
    try:
        bface = lm.detect(b)
        box = bface.box
        m_lm = landmark_transform(bface, lm.detect(f))
        lm_err, lm_s = corner_error(m_lm, true, shape), time.perf_counter() - t0
        lm_face = face_error(m_lm, true, box)
    except Exception:  # noqa: BLE001 - counted as a landmark failure
        lm_err, lm_s, box = float("inf"), time.perf_counter() - t0, None
    try:
        res = align(b, f)
        return {"err": corner_error(res.matrix, true, shape), "ok": res.ok,
                "face_err": face_error(res.matrix, true, box) if box else float("inf"),
                "lm_face_err": lm_face, "reason": res.reason,
                "ncc": res.ncc, "residual_px": res.residual_px, "seconds": res.seconds,
                "lm_err": lm_err, "lm_seconds": lm_s}
    except AlignmentError as exc:
        return {"err": float("inf"), "ok": False, "reason": f"AlignmentError: {exc}", "ncc": 0.0,
                "residual_px": float("nan"), "seconds": time.perf_counter() - t0,
                "face_err": float("inf"), "lm_face_err": lm_face,
                "lm_err": lm_err, "lm_seconds": lm_s}


def hard_cases(face, rng) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Adversarial follow-ups: (name, baseline, follow-up, true follow-up → baseline)."""
    cb, cf = random_captures(rng)
    b, sb = photograph(face, [], cb, seed=901)
    f, sf = photograph(face, [], cf, seed=902)
    true = true_transform(sf, sb)
    h, w = f.shape[:2]
    out = []
    mirrored = np.ascontiguousarray(f[:, ::-1])
    flip = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
    out.append(("mirrored follow-up", b, mirrored, true @ flip))
    occluded = f.copy()
    pts = get_landmarker().detect(f).points
    x0, y0 = pts.min(axis=0).astype(int)
    x1, y1 = pts.max(axis=0).astype(int)
    occluded[y0 + (y1 - y0) // 3:, x0 - 20:x1 + 20] = (60, 70, 90)  # lower 2/3 of the face covered
    out.append(("lower face covered", b, occluded, true))
    blurred, sbl = photograph(face, [], Capture(**{**cf.__dict__, "blur": 8.0, "noise": 6.0}), seed=903)
    out.append(("heavy blur and noise", b, blurred, true_transform(sbl, sb)))
    strong = Capture(angle_deg=25.0, scale=0.8, shift=(0.1, 0.05), tilt=(6e-5, 0), gradient=0.3)
    fs, sfs = photograph(face, [], strong, seed=904)
    out.append(("rotation 25° and strong perspective", b, fs, true_transform(sfs, sb)))
    return out


def summarise(errors: np.ndarray) -> str:
    finite = errors[np.isfinite(errors)]
    med = np.median(errors) if len(errors) else float("nan")
    p95 = np.percentile(errors, 95) if len(finite) == len(errors) and len(errors) else float("inf")
    return f"{med:8.3f} {p95:8.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--scale", type=float, default=8.0, help="phantom scale (8: face ~730 px wide)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hard", action="store_true", help="skip the adversarial pairs")
    ap.add_argument("--json", type=Path, help="write per-pair results here")
    args = ap.parse_args(argv)

    rows = []
    n_faces = -(-args.pairs // PAIRS_PER_FACE)
    for k in range(n_faces):
        face = make_face(args.scale, seed=args.seed + k, tone=TONES[k % len(TONES)])
        for j in range(min(PAIRS_PER_FACE, args.pairs - len(rows))):
            i = len(rows)
            rng = np.random.default_rng(10_000 * args.seed + i)
            cb, cf = random_captures(rng)
            b, sb = photograph(face, [], cb, seed=2 * i)
            f, sf = photograph(face, CHANGES[i % len(CHANGES)], cf, seed=2 * i + 1)
            r = run_pair(b, f, true_transform(sf, sb), b.shape)
            r.update(pair=i, face_seed=args.seed + k, tone=TONES[k % len(TONES)],
                     changes=[c.kind for c in CHANGES[i % len(CHANGES)]])
            rows.append(r)
            print(f"pair {i:3d} tone {r['tone']:.1f}  ours {r['err']:7.3f} px  ok={r['ok']!s:5}  "
                  f"landmarks {r['lm_err']:7.2f} px  {r['seconds']:.2f} s  {r['reason']}", flush=True)
        if k == n_faces - 1 and not args.no_hard:
            for name, b, f, true in hard_cases(face, np.random.default_rng(args.seed + 77)):
                r = run_pair(b, f, true, b.shape)
                r.update(pair=f"hard: {name}", hard=True)
                rows.append(r)
                print(f"hard  {name:36s} ours {r['err']:8.2f} px  ok={r['ok']!s:5}  {r['reason']}",
                      flush=True)

    normal = [r for r in rows if not r.get("hard")]
    ours = np.array([r["err"] for r in normal])
    lms = np.array([r["lm_err"] for r in normal])
    refused = sum(not r["ok"] for r in normal)
    silent = [r for r in rows if r["ok"] and r["err"] > SILENT_PX]
    face_px = 91.0 * args.scale  # landmark box width of the phantom face
    print()
    print(f"{len(normal)} pairs, phantom scale {args.scale:g} (face ~{face_px:.0f} px wide), "
          f"image corner error in baseline px")
    print(f"{'':28s} {'corners':>17s} {'on the face':>17s}")
    print(f"{'method':28s} {'median':>8s} {'p95':>8s} {'median':>8s} {'p95':>8s} {'>3px':>6s} "
          f"{'refused':>8s} {'s/pair':>7s}")
    for name, err, face_err, refused_txt, key in (
            ("ours (landmarks + ECC)", ours, "face_err", f"{refused:8d}", "seconds"),
            ("landmark-only similarity", lms, "lm_face_err", f"{'-':>8s}", "lm_seconds")):
        fe = np.array([r[face_err] for r in normal])
        print(f"{name:28s} {summarise(err)} {summarise(fe)} {int((err > SILENT_PX).sum()):6d} "
              f"{refused_txt} {np.median([r[key] for r in normal]):7.2f}")
    print(f"failure rate (ours, error > {SILENT_PX:g} px or refused): "
          f"{np.mean([(r['err'] > SILENT_PX) or not r['ok'] for r in normal]):.1%}")
    hard = [r for r in rows if r.get("hard")]
    if hard:
        print(f"adversarial pairs refused: {sum(not r['ok'] for r in hard)}/{len(hard)}")
    print(f"silent failures (ok=true and error > {SILENT_PX:g} px): {len(silent)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 1 if silent else 0


if __name__ == "__main__":
    sys.exit(main())
