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
# Cb and Cr rows for pixels given as G, R, B: cv2.transform with one output row
# chains its fused multiply-adds over the 2nd, 1st, 3rd channel, so it then
# rounds as BLAS does ``pixels @ _TO_CHROMA.T`` (R, G, B), without BLAS threads,
# which stall while another job holds the other core (1.2 M pixels: 256 ms, not 2)
_CHROMA_OF_GRB = [np.ascontiguousarray(_TO_CHROMA[c:c + 1, [1, 0, 2]]) for c in (0, 1)]
# EXIF orientation -> (axes swapped, displayed x reversed, displayed y reversed) with respect
# to the stored image: the transforms intake applies (Pillow's exif_transpose)
_ORIENTATION_AXES = {1: (False, False, False), 2: (False, True, False), 3: (False, True, True),
                     4: (False, False, True), 5: (True, False, False), 6: (True, True, False),
                     7: (True, True, True), 8: (True, False, True)}
_JACOBI_STEPS = 6   # each divides the error of undoing the upsampling by 3
_JACOBI_ROWS = 256  # chroma rows per band of the Jacobi iteration (and 2 × _JACOBI_STEPS more)


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
        return self._delta(exact, values)

    @staticmethod
    def _delta(exact: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """ΔR, ΔG, ΔB (..., 3) float32 from Cb, Cr ``exact`` (n, 2) and the decoded
        ``pixels`` (..., 3) at the same n places; zero where ``exact`` is NaN.

        The numbers of ``(exact - pixels @ _TO_CHROMA.T) @ _CHROMA_TO_RGB.T``
        without BLAS (:data:`_CHROMA_OF_GRB`): R and B are one product each
        (their other coefficient is 0), G's fused multiply-add is ``cv2.scaleAdd``."""
        shape = np.shape(pixels)
        if not np.size(exact):
            return np.zeros(shape, np.float32)
        grb = np.asarray(pixels)[..., [1, 0, 2]].reshape(1, -1, 3).astype(np.float32, copy=False)
        exact = np.asarray(exact, np.float32).reshape(-1, 2)
        cb, cr = (cv2.transform(grb, m).reshape(-1) for m in _CHROMA_OF_GRB)
        cb, cr = np.subtract(exact[:, 0], cb, out=cb), np.subtract(exact[:, 1], cr, out=cr)
        (_, red), (green_cb, green_cr), (blue, _) = _CHROMA_TO_RGB
        rgb = cv2.merge([cr * red, cv2.scaleAdd(cr, float(green_cr), cb * green_cb), cb * blue])
        return cv2.patchNaNs(rgb, 0).reshape(shape)


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
    chroma, unclipped = _sample_chroma(rgb[y0:y1, x0:x1], sx, sy)
    h, w = chroma[0].shape
    scratch = (np.empty((h, w), np.float32), np.empty((h, w), np.float32))
    decoded = np.empty((h, w), np.float32)
    rebuilt = []
    for plane, table in zip(chroma, (coding.cb_table, coding.cr_table)):
        table = np.asarray(table, np.float32).reshape(8, 8)
        samples = _undo_upsampling(plane, sx > 1, sy > 1, decoded)
        # into the plane once it is read (fewer fresh pages of memory)
        rebuilt.append(_requantised(samples, table.T if swap else table, scratch,
                                    plane if samples is decoded else None))
    exact = cv2.merge(rebuilt)
    # a clipped pixel's chroma is not the file's: its blocks stay as decoded
    iy, ix = np.nonzero(unclipped < 255)
    if len(iy):
        exact.reshape(h // 8, 8, w // 8, 8, 2)[iy, :, ix] = np.nan
    return ExactChroma(exact, (x0, y0), (sx, sy))


def _sample_chroma(patch: np.ndarray, sx: int, sy: int) -> tuple[np.ndarray, np.ndarray]:
    """Cb, Cr (2, h, w) float32 of the mean of each chroma sample's ``sx`` × ``sy``
    pixels of ``patch`` (uint8 RGB, whole chroma blocks), and per chroma block
    (h / 8, w / 8) uint8 255 where none of its pixels is clipped (0 or 255 in
    a channel), less where one is (the block's mean of inRange's 255s).

    The numbers of ``means @ _TO_CHROMA.T`` (see :data:`_CHROMA_OF_GRB`)
    through bands of rows that stay in the processor's cache.  The means are
    exact: sums of integers in uint16, their 1/(sx·sy) folded into the matrix
    (a power of two, which changes no rounding)."""
    n = sx * sy
    h, w = patch.shape[0] // sy, patch.shape[1] // sx
    matrices = [m / np.float32(n) for m in _CHROMA_OF_GRB]
    out = np.empty((2, h, w), np.float32)
    unclipped = np.empty((h // 8, w // 8), np.uint8)
    rows = 64                                            # a multiple of 8
    inside = np.empty((min(h, rows) * sy, patch.shape[1]), np.uint8)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        band = patch[r0 * sy:r1 * sy]
        cv2.inRange(band, (1, 1, 1), (254, 254, 254), dst=inside[:len(band)])
        cv2.resize(inside[:len(band)], (w // 8, (r1 - r0) // 8), dst=unclipped[r0 // 8:r1 // 8],
                   interpolation=cv2.INTER_AREA)
        sums = band
        if n > 1:   # INTER_AREA's mean of n × the pixels is their sum, exactly
            sums = cv2.resize(np.multiply(band, n, dtype=np.uint16), (w, r1 - r0), interpolation=cv2.INTER_AREA)
        grb = np.empty_like(sums)
        cv2.mixChannels([sums], [grb], [1, 0, 0, 1, 2, 2])
        grb = grb.astype(np.float32)
        for c in (0, 1):
            cv2.transform(grb, matrices[c], dst=out[c, r0:r1])
    return out, unclipped


def _requantised(decoded: np.ndarray, table: np.ndarray, scratch: tuple, out: np.ndarray | None = None) -> np.ndarray:
    """Chroma samples rebuilt in floating point (into ``out``) from the quantised DCT
    coefficients that the decoded (rounded) samples ``decoded`` (h, w) came from;
    ``scratch``: two float32 arrays of its size.

    JPEG's blockwise DCT (orthonormal DCT-II, T.81 A.3.3) is ``cv2.dct`` over
    runs of 8 samples: along x on the plane, then along y on its transpose
    (the inverse: along u, then v), so no block is gathered; each run is the
    one a block-by-block transform takes, hence the same numbers."""
    h, w = decoded.shape
    nby, nbx = h // 8, w // 8
    fwd, inv = cv2.DCT_ROWS, cv2.DCT_ROWS | cv2.DCT_INVERSE
    a, b = (s.reshape(-1) for s in scratch)
    plane, turned = (lambda s: s.reshape(h, w)), (lambda s: s.reshape(w, h))   # turned: [x][y]
    cv2.dct(decoded.reshape(-1, 8), dst=a.reshape(-1, 8), flags=fwd)
    cv2.transpose(plane(a), dst=turned(b))
    cv2.dct(b.reshape(-1, 8), dst=a.reshape(-1, 8), flags=fwd)
    levels = turned(a)           # coefficient (v, u) of block (by, bx) at [8 bx + u][8 by + v]
    coef_dc = levels[::8, ::8].T.flatten()               # per block, blocks in row-major order
    steps = np.tile(table.T, (1, nby))                   # the step at [u][8 by + v]
    quantised = levels.reshape(nbx, 8, h)                # the coefficients become their levels
    quantised /= steps
    np.rint(quantised, out=quantised)
    quantised *= steps
    level_dc = levels[::8, ::8].T.flatten()
    ac = np.abs(levels, out=turned(b))
    ac[::8, ::8] = 0
    flat = (cv2.resize(ac, (nby, nbx), interpolation=cv2.INTER_AREA) == 0).T.ravel()
    # inverse: along u (on the plane), then along v (on its transpose), as block by block
    cv2.transpose(levels, dst=plane(b))
    cv2.dct(b.reshape(-1, 8), dst=a.reshape(-1, 8), flags=inv)
    cv2.transpose(plane(a), dst=turned(b))
    cv2.dct(b.reshape(-1, 8), dst=a.reshape(-1, 8), flags=inv)
    rebuilt = cv2.transpose(turned(a), dst=out)
    dc = _dc_levels(decoded, rebuilt, coef_dc, level_dc, flat, float(table[0, 0]), scratch)
    shift = ((dc - level_dc) / 8).reshape(nby, nbx)   # a DC change moves every sample by 1/8 of it
    rebuilt += cv2.resize(shift, (w, h), dst=plane(a), interpolation=cv2.INTER_NEAREST)
    return rebuilt


def _hit_tables() -> list[np.ndarray]:
    """For :func:`_dc_levels`: by ``7 first + last' + 23`` (first in -3..3, last' =
    last + 1 in -2..4), whether the DC shifts s = -2..2 hit (first <= s <= last),
    as sum hit_s 65^k in two float32 (-2, -1, 0 and 1, 2), so that the sums
    over 64 samples stay exact."""
    first, last = np.meshgrid(np.arange(-3, 4), np.arange(-3, 4), indexing="ij")
    hits = [(first <= s) & (last >= s) for s in range(-2, 3)]
    tables = []
    for group in (hits[:3], hits[3:]):
        table = np.zeros(256, np.float32)
        table[(7 * first + last + 24).ravel()] = sum(hit * 65 ** k for k, hit in enumerate(group)).ravel()
        tables.append(table)
    return tables


_HIT_TABLES = _hit_tables()


def _dc_levels(decoded: np.ndarray, rebuilt: np.ndarray, coef_dc: np.ndarray, level_dc: np.ndarray,
               flat: np.ndarray, step: float, scratch: tuple) -> np.ndarray:
    """Each block's DC coefficient (8 × its mean sample): the mean of the DC levels
    that decode to the block's samples.

    The decoder rounds each sample half up, so once the DC step is below 8
    (chroma quality above ~70) several DC levels can decode to the same
    integers, and the rounding picks the same way for all of them: the bias
    this module removes.  A block whose AC coefficients quantised to zero
    (``flat``) decodes to one integer ``v``, which every level with a mean in
    ``[v - 1/2, v + 1/2)`` does.  Other blocks are tested against their
    samples (``rebuilt``: the inverse DCT of the levels): the levels within ±2
    steps of the nearest that miss at most one sample more than the best.

    ``decoded``, ``rebuilt``: (h, w) planes; ``coef_dc``, ``level_dc``,
    ``flat``: per 8 × 8 block, in row-major order; ``scratch``: two float32
    arrays of the planes' size.  The misses are counted by table look-up and
    block means over the whole plane: cheaper than gathering the blocks.
    """
    dc = level_dc.copy()
    v = np.floor(coef_dc[flat] / 8 + 0.5)          # what a flat block decoded to
    lo, hi = np.ceil((v - 0.5) * 8 / step), np.ceil((v + 0.5) * 8 / step) - 1
    dc[flat] = np.where(hi >= lo, 0.5 * (lo + hi) * step, dc[flat])
    rest = ~flat
    if rest.any():
        # a sample decodes right after a DC shift of s steps when
        # r - 1/2 <= s * step / 8 < r + 1/2, r = its integer minus the float rebuilt,
        # i.e. first <= s <= last
        r, first = scratch
        d = np.float32(step / 8)
        np.rint(decoded, out=r)
        r -= rebuilt
        np.subtract(r, 0.5, out=first)
        first /= d
        np.ceil(first, out=first)
        np.clip(first, -3, 3, out=first)
        last = np.add(r, 0.5, out=r)
        last /= d
        np.ceil(last, out=last)                        # last + 1
        np.clip(last, -2, 4, out=last)
        index = cv2.addWeighted(first, 7, last, 1, 23, dtype=cv2.CV_8U)
        h, w = index.shape
        low, high = (np.rint(cv2.resize(cv2.LUT(index, table, dst=buffer), (w // 8, h // 8),
                                        interpolation=cv2.INTER_AREA).ravel()[rest] * 64).astype(np.int64)
                     for table, buffer in zip(_HIT_TABLES, scratch))
        hits = np.stack([low % 65, low // 65 % 65, low // 65 ** 2, high % 65, high // 65])
        shifts = np.arange(-2, 3)
        miss = 64 - hits
        ok = miss <= miss.min(axis=0) + 1
        dc[rest] += step * (ok * shifts[:, None]).sum(axis=0) / ok.sum(axis=0)
    return dc


_ALONG_X = np.float32([[-1 / 6, 0, -1 / 6]])
_ALONG_Y = np.ascontiguousarray(_ALONG_X.T)


def _undo_upsampling(means: np.ndarray, along_x: bool, along_y: bool, out: np.ndarray) -> np.ndarray:
    """Chroma samples from the means of the pixels each was upsampled to (into
    ``out``, or ``means`` itself when not upsampled).

    libjpeg's "fancy" upsampling interpolates linearly between sample centres
    (weights 3/4, 1/4); the mean of a sample's two pixels is then the filter
    (1, 6, 1) / 8 along that axis, inverted here by Jacobi iteration
    ``x = (8 m - x[i-1] - x[i+1]) / 6`` (its error shrinks 3× a step).

    Worked through bands of rows with :data:`_JACOBI_STEPS` rows more on
    either side: step k is wrong only within k rows of a band's cut edge, so
    the band's own rows come out as from the whole plane."""
    h, w = means.shape
    if not (along_x or along_y):
        return means
    halo = _JACOBI_STEPS if along_y else 0
    kernels = [k for on, k in ((along_x, _ALONG_X), (along_y, _ALONG_Y)) if on]
    rows = _JACOBI_ROWS
    buffers = np.empty((3, min(h, rows + 2 * halo), w), np.float32)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a, b = max(0, r0 - halo), min(h, r1 + halo)
        target, *ping = (buf[:b - a] for buf in buffers)
        x = means[a:b]
        for kernel in kernels:
            np.multiply(x, np.float32(8 / 6), out=target)
            for _ in range(_JACOBI_STEPS):
                y = ping[x is ping[0]]
                cv2.filter2D(x, -1, kernel, dst=y, borderType=cv2.BORDER_REPLICATE)
                y += target
                x = y
        out[r0:r1] = x[r0 - a:r1 - a]
    return out
