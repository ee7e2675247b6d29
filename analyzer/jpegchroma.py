"""The chroma a JPEG file holds, without the 8-bit rounding of its decode.

A JPEG stores chroma as quantised DCT coefficients.  A decoder rounds the
rebuilt chroma samples to integers before upsampling them and converting to
RGB.  Where skin or a backdrop is smooth, the chroma AC coefficients quantise
to zero and a whole 8 × 8 block decodes to one rounded constant, so the
rounding no longer averages out: on the phantom's dark skin (sRGB blue ≈ 40)
the face's mean blue moved by +0.06 to +0.26 code values between JPEG
qualities 85 and 95 (a lossless copy as reference), which the redness index
read as a 1–3 % change, and the backdrop the colour correction reads moved
with it.  The 8-bit pixels still determine the quantised coefficients (the
quantisation step is larger than the decode's rounding noise), so
:func:`exact_chroma` recovers them and rebuilds the chroma in floating point.

Written here because no maintained Python library decodes a JPEG from memory
to floating-point samples: Pillow, OpenCV and simplejpeg return 8-bit pixels,
and jpeglib reads coefficients only from a file path (a photo of a patient
would be written to disk) and its libjpeg may exit the process on a damaged
file.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# JFIF (ITU-T T.871): RGB -> centred Cb, Cr; and Cb, Cr -> their share of R, G, B
_TO_CHROMA = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_CHROMA_TO_RGB = np.array([[0.0, 1.402], [-0.344136, -0.714136], [1.772, 0.0]], np.float32)
# EXIF orientation -> (axes swapped, displayed x reversed, displayed y reversed) with respect
# to the stored image: the transforms intake applies (Pillow's exif_transpose)
_ORIENTATION_AXES = {1: (False, False, False), 2: (False, True, False), 3: (False, True, True),
                     4: (False, False, True), 5: (True, False, False), 6: (True, True, False),
                     7: (True, True, True), 8: (True, False, True)}
_JACOBI_STEPS = 6   # each divides the error of undoing the upsampling by 3


@dataclass(frozen=True)
class ChromaCoding:
    """How a YCbCr JPEG coded its chroma, from its headers.

    ``cb_table``, ``cr_table``: the 64 quantisation steps (natural order);
    ``subsampling``: (horizontal, vertical) chroma subsampling of the stored
    image, each 1 or 2; ``stored_size``: (width, height) before the EXIF
    ``orientation`` was applied.
    """

    cb_table: tuple
    cr_table: tuple
    subsampling: tuple[int, int]
    stored_size: tuple[int, int]
    orientation: int = 1

    @classmethod
    def of(cls, img, orientation: int) -> "ChromaCoding | None":
        """From an opened Pillow JPEG; ``None`` unless it is 3-component YCbCr with
        chroma sampled once per 1×1, 2×1 or 2×2 pixels (what cameras and phones write)."""
        layer = getattr(img, "layer", None)
        tables = getattr(img, "quantization", None) or {}
        if img.format not in ("JPEG", "MPO") or img.mode != "RGB" or not layer or len(layer) != 3:
            return None
        (yid, h, v, _), (_, hb, vb, tb), (_, hr, vr, tr) = layer
        if (hb, vb, hr, vr) != (1, 1, 1, 1) or h not in (1, 2) or v not in (1, 2) \
                or tb not in tables or tr not in tables or orientation not in _ORIENTATION_AXES:
            return None
        # stored as RGB, not YCbCr: an Adobe marker saying "no transform", or components named R, G, B
        if img.info.get("adobe_transform") == 0 or yid in ("R", 82):
            return None
        return cls(tuple(int(q) for q in tables[tb]), tuple(int(q) for q in tables[tr]), (h, v),
                   tuple(img.size), orientation)

    def block_grid(self) -> tuple[tuple[int, int], tuple[int, int], bool]:
        """In the displayed (oriented) photo: the pixels per chroma sample ``(sx, sy)``,
        the position ``(ox, oy)`` of the chroma block grid and whether the axes are
        swapped (a flip moves a partial last block of the stored image to the front)."""
        swap, rev_x, rev_y = _ORIENTATION_AXES[self.orientation]
        (sx, sy), (w, h) = self.subsampling, self.stored_size
        if swap:
            sx, sy, w, h = sy, sx, h, w
        return (sx, sy), ((w % (8 * sx)) if rev_x else 0, (h % (8 * sy)) if rev_y else 0), swap


@dataclass(frozen=True)
class ExactChroma:
    """The chroma a JPEG file holds over a part of a photo, before the decode rounded it.

    ``samples`` (h, w, 2) float32: Cb, Cr (centred, 8-bit code values) on the
    chroma sample grid; sample ``(i, j)`` covers the displayed pixels from
    ``origin + (j·sx, i·sy)`` to ``+ (sx, sy)``, ``factor = (sx, sy)``; NaN
    where unknown (blocks with a clipped pixel).  Upsampled as the decoder
    upsamples (linear between sample centres).
    """

    samples: np.ndarray
    origin: tuple[int, int]
    factor: tuple[int, int]

    def rgb_delta_at(self, values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """ΔR, ΔG, ΔB (..., 3) float32 to add to the decoded pixels ``values`` (..., 3)
        uint8 at rows ``ys`` and columns ``xs`` of the photo (arrays of the same
        shape, may be fractional) for the file's chroma; zero where not covered."""
        (sx, sy), (ox, oy) = self.factor, self.origin
        n = int(np.size(xs))
        width = max(1, min(n, 4096))   # cv2.remap takes at most 32767 rows or columns
        grid = np.full(width * -(-n // width), -1e6, np.float32)
        grid[:n] = ((np.ravel(xs).astype(np.float32) - ox + 0.5) / sx - 0.5)
        u = grid.reshape(-1, width).copy()
        grid[:n] = ((np.ravel(ys).astype(np.float32) - oy + 0.5) / sy - 0.5)
        v = grid.reshape(-1, width)
        exact = cv2.remap(self.samples, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(np.nan, np.nan)).reshape(-1, 2)[:n]
        return self._delta(exact.reshape(*np.shape(values)[:-1], 2), values)

    @staticmethod
    def _delta(exact: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        delta = exact - np.asarray(pixels, np.float32) @ _TO_CHROMA.T
        return np.nan_to_num(delta @ _CHROMA_TO_RGB.T, nan=0.0).astype(np.float32)


def exact_chroma(rgb: np.ndarray, box: tuple[int, int, int, int], coding: ChromaCoding) -> ExactChroma | None:
    """The chroma the file holds over the part ``box`` of a photo.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) uint8
        The whole decoded photo, EXIF orientation applied (as intake returns it),
        decoded by libjpeg(-turbo): integer IDCT, "fancy" (triangle) upsampling.
    box : (x0, y0, x1, y1)
        The part needed, in those pixels; widened to whole chroma blocks.
    coding : ChromaCoding

    Returns
    -------
    ExactChroma or None
        ``None`` when the part holds no whole chroma block.
    """
    (sx, sy), (ox, oy), swap = coding.block_grid()
    bx, by = 8 * sx, 8 * sy
    H, W = rgb.shape[:2]
    x0 = max(ox, ox + bx * ((box[0] - ox) // bx - 1))
    y0 = max(oy, oy + by * ((box[1] - oy) // by - 1))
    x1 = min(ox + bx * ((W - ox) // bx), ox + bx * (-(-(box[2] - ox) // bx) + 1))
    y1 = min(oy + by * ((H - oy) // by), oy + by * (-(-(box[3] - oy) // by) + 1))
    if x1 - x0 < bx or y1 - y0 < by:
        return None
    patch = rgb[y0:y1, x0:x1]
    ns = ((x1 - x0) // sx, (y1 - y0) // sy)
    if (sx, sy) != (1, 1):   # the mean of each sample's pixels, to 1/64 of a code value
        means = cv2.resize(np.left_shift(patch, 6, dtype=np.uint16), ns, interpolation=cv2.INTER_AREA)
        means = means.astype(np.float32) * np.float32(1 / 64)
    else:
        means = patch.astype(np.float32)
    chroma = means.reshape(-1, 3) @ _TO_CHROMA.T
    tables = [np.asarray(t, np.float32).reshape(8, 8) for t in (coding.cb_table, coding.cr_table)]

    def plane(c):
        decoded = _undo_upsampling(np.ascontiguousarray(chroma[:, c].reshape(ns[1], ns[0])), sx > 1, sy > 1)
        return _requantised(decoded, tables[c].T if swap else tables[c])

    exact = np.dstack([plane(0), plane(1)])
    # a clipped pixel's chroma is not the file's: its blocks stay as decoded
    clipped = cv2.inRange(patch, (1, 1, 1), (254, 254, 254)) == 0
    if clipped.any():
        # any clipped pixel marks its block (255 keeps one of 256 from rounding away)
        blocks = cv2.resize(clipped.view(np.uint8) * np.uint8(255), (ns[0] // 8, ns[1] // 8),
                            interpolation=cv2.INTER_AREA) > 0
        exact[np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)] = np.nan
    return ExactChroma(exact, (x0, y0), (sx, sy))


def _requantised(decoded: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Chroma samples rebuilt in floating point from the quantised DCT coefficients
    that the decoded (rounded) samples ``decoded`` came from."""
    h, w = decoded.shape
    blocks = np.ascontiguousarray(decoded.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)).reshape(-1, 8, 8)
    coef = _blockwise(blocks)
    levels = np.rint(coef / table) * table
    rebuilt = _blockwise(levels, inverse=True)
    dc = _dc_levels(blocks, coef, levels, rebuilt, float(table[0, 0]))
    rebuilt += ((dc - levels[:, 0, 0]) / 8)[:, None, None]   # a DC change moves every sample by 1/8 of it
    return np.ascontiguousarray(rebuilt.reshape(h // 8, w // 8, 8, 8).transpose(0, 2, 1, 3)).reshape(h, w)


def _blockwise(blocks: np.ndarray, inverse: bool = False) -> np.ndarray:
    """The orthonormal 2-D DCT-II of each block of ``blocks`` (n, 8, 8), which is
    JPEG's forward DCT (T.81 A.3.3), or its inverse: two passes of ``cv2.dct``
    over the rows of the whole stack (several times faster than a stack of
    small matrix products)."""
    n = len(blocks)
    flags = cv2.DCT_ROWS | (cv2.DCT_INVERSE if inverse else 0)
    rows = cv2.dct(np.ascontiguousarray(blocks).reshape(n * 8, 8), flags=flags).reshape(n, 8, 8)
    return cv2.dct(np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(n * 8, 8), flags=flags) \
        .reshape(n, 8, 8).transpose(0, 2, 1)


def _dc_levels(decoded: np.ndarray, coef: np.ndarray, levels: np.ndarray, rebuilt: np.ndarray,
               step: float) -> np.ndarray:
    """Each block's DC coefficient (8 × its mean sample): the mean of the DC levels
    that decode to the block's samples.

    The decoder rounds each sample half up, so once the DC step is below 8
    (chroma quality above ~70) several DC levels can decode to the same
    integers, and the rounding picks the same way for all of them: the bias
    this module removes.  A block whose AC coefficients quantised to zero
    decodes to one integer ``v``, which every level with a mean in
    ``[v - 1/2, v + 1/2)`` does.  Other blocks are tested against their
    samples (``rebuilt``: the inverse DCT of ``levels``): the levels within ±2
    steps of the nearest that miss at most one sample more than the best.
    """
    flat = ~levels.reshape(-1, 64)[:, 1:].any(axis=-1)
    dc = levels[:, 0, 0].copy()
    v = np.floor(coef[flat, 0, 0] / 8 + 0.5)          # what a flat block decoded to
    lo, hi = np.ceil((v - 0.5) * 8 / step), np.ceil((v + 0.5) * 8 / step) - 1
    dc[flat] = np.where(hi >= lo, 0.5 * (lo + hi) * step, dc[flat])
    rest = ~flat
    if rest.any():
        # a sample decodes right after a DC shift of s steps when
        # r - 1/2 <= s * step / 8 < r + 1/2, r = its integer minus the float rebuilt
        r = np.rint(decoded[rest]) - rebuilt[rest]
        d = np.float32(step / 8)
        first = np.clip(np.ceil((r - 0.5) / d), -3, 3).astype(np.int8)
        last = np.clip(np.ceil((r + 0.5) / d) - 1, -3, 3).astype(np.int8)
        shifts = np.arange(-2, 3)
        miss = np.stack([64 - np.count_nonzero((first <= s) & (last >= s), axis=(1, 2)) for s in shifts])
        ok = miss <= miss.min(axis=0) + 1
        dc[rest] += step * (ok * shifts[:, None]).sum(axis=0) / ok.sum(axis=0)
    return dc


def _undo_upsampling(means: np.ndarray, along_x: bool, along_y: bool) -> np.ndarray:
    """Chroma samples from the means of the pixels each was upsampled to.

    libjpeg's "fancy" upsampling interpolates linearly between sample centres
    (weights 3/4, 1/4); the mean of a sample's two pixels is then the filter
    (1, 6, 1) / 8 along that axis, inverted here by Jacobi iteration
    ``x = (8 m - x[i-1] - x[i+1]) / 6`` (its error shrinks 3× a step)."""
    out = means
    for on, kernel in ((along_x, np.float32([[-1 / 6, 0, -1 / 6]])), (along_y, np.float32([[-1 / 6], [0], [-1 / 6]]))):
        if on:
            target = out * np.float32(8 / 6)
            x = out
            for _ in range(_JACOBI_STEPS):
                x = target + cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REPLICATE)
            out = x
    return out
