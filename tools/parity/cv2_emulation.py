#!/usr/bin/env python3
"""Numpy models of the OpenCV calls insightface 0.7.3 makes, checked against cv2.

Usage:  python tools/parity/cv2_emulation.py IMAGE_DIR REFERENCE_JSON

Not part of the pass/fail harness: a porting aid for the Rust side.  It states,
as code, what cv2.resize and cv2.warpAffine compute on uint8 images, and
measures on the parity images (with the landmarks insightface found, taken from
REFERENCE_JSON) how far each model is from the cv2 that is installed:

  resize (SCRFD letterbox, cv2.resize(img, (new_w, new_h)), INTER_LINEAR):
    * resize_fixed  -- OpenCV's fixed-point INTER_LINEAR for 8-bit: source
                       coordinate (d + 0.5) * (1 / (dst/src)) - 0.5 in float32,
                       11-bit weights (round(w * 2048)), horizontal pass into
                       int32, vertical pass (b0*S0 + b1*S1 + 2^21) >> 22; edge
                       clamping; an exact 2x downscale becomes INTER_AREA
                       ((a + b + c + d + 2) >> 2).
    * resize_float  -- the textbook version: same coordinates in float64,
                       float weights, round half up.
  warpAffine (face_align.norm_crop: cv2.warpAffine(img, M, (112, 112),
  borderValue=0.0), INTER_LINEAR, BORDER_CONSTANT 0):
    * warp_fixed    -- OpenCV's classic 8-bit path: invert M in float64; per
                       pixel X = (round(M'[0]*x*1024) + round((M'[1]*y + M'[2])*1024)
                       + 16) >> 5, i.e. the source position on a 1/32 grid
                       (INTER_BITS = 5); integer weights (32-fx)*(32-fy)*32 ...
                       summing to 32768; (sum + 2^14) >> 15; neighbours outside
                       the image count as 0.
    * warp_float    -- float64 source position, float bilinear weights, round
                       half up, outside neighbours 0.
  similarity (face_align.estimate_norm via skimage SimilarityTransform.estimate):
    * umeyama64     -- Umeyama in float64 from the float32 landmarks; insightface
                       passes float32 arrays, so skimage works in float32 for
                       the means and the SVD (differences ~1e-6).

Printed: for each model, how many output values differ from cv2 and by how
much.  Exit 0 always (it measures; it does not judge).
"""

import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import letterbox  # noqa: E402

ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


# --------------------------------------------------------------------------
# cv2.resize INTER_LINEAR, uint8
# --------------------------------------------------------------------------
def _axis_fixed(n_dst, n_src, clamp_weights):
    """Source index pair and 11-bit weights per destination index (resize.cpp).

    Columns (clamp_weights=True): outside the image the weight pair becomes
    (2048, 0) on the edge pixel.  Rows (False): the weights are kept and only
    the row indices are clipped, so an edge row gets e.g. (384, 1664) on the
    same row twice -- equal in exact arithmetic, not always after the SIMD
    rounding of the vertical pass (upscaled images, first and last rows).
    """
    scale = 1.0 / (float(n_dst) / n_src)          # scale_x = 1. / inv_scale_x
    f = ((np.arange(n_dst) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = s < 0
        f[low], s[low] = 0, 0
        high = s >= n_src - 1
        f[high], s[high] = 0, n_src - 1
    w1 = np.rint((f * np.float32(2048)).astype(np.float32)).astype(np.int64)
    w0 = np.rint(((np.float32(1) - f) * np.float32(2048)).astype(np.float32)).astype(np.int64)
    return np.clip(s, 0, n_src - 1), np.clip(s + 1, 0, n_src - 1), w0, w1


def resize_fixed(img, new_w, new_h, simd_rounding=False):
    h, w = img.shape[:2]
    if w == 2 * new_w and h == 2 * new_h:  # INTER_LINEAR with scale exactly 2 -> INTER_AREA fast
        a = img.astype(np.int64)
        return ((a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2] + 2) >> 2).astype(np.uint8)
    xs0, xs1, a0, a1 = _axis_fixed(new_w, w, True)
    ys0, ys1, b0, b1 = _axis_fixed(new_h, h, False)
    src = img.astype(np.int64)
    rows = src[:, xs0] * a0[None, :, None] + src[:, xs1] * a1[None, :, None]  # scale 2048
    s0, s1 = rows[ys0], rows[ys1]
    bb0, bb1 = b0[:, None, None], b1[:, None, None]
    if simd_rounding:  # VResizeLinearVec_32s8u (what x86 builds run on all but a row's
        # last few values): ((S >> 4) * b >> 16) per row, summed, then (v + 2) >> 2
        v = (((s0 >> 4) * bb0) >> 16) + (((s1 >> 4) * bb1) >> 16)
        out = (v + 2) >> 2
    else:              # FixedPtCast<int, uchar, 22>
        out = (s0 * bb0 + s1 * bb1 + (1 << 21)) >> 22
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_float(img, new_w, new_h):
    h, w = img.shape[:2]

    def axis(n_dst, n_src):
        src = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
        src = np.clip(src, 0, n_src - 1)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n_src - 1), src - i0

    y0, y1, fy = axis(new_h, h)
    x0, x1, fx = axis(new_w, w)
    f = img.astype(np.float64)
    fy, fx = fy[:, None, None], fx[None, :, None]
    out = ((f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx) * (1 - fy)
           + (f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx) * fy)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# cv2.warpAffine INTER_LINEAR, BORDER_CONSTANT 0, uint8
# --------------------------------------------------------------------------
def invert_affine(m):
    """warpAffine's own inversion (imgwarp.cpp), float64."""
    m = np.asarray(m, np.float64).reshape(6).copy()
    d = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[4] * d, m[0] * d
    m[0], m[1], m[3], m[4] = a11, m[1] * -d, m[3] * -d, a22
    b1 = -m[0] * m[2] - m[1] * m[5]
    b2 = -m[3] * m[2] - m[4] * m[5]
    m[2], m[5] = b1, b2
    return m


def _sample(img, yy, xx):
    h, w = img.shape[:2]
    ok = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))[..., None]
    return np.where(ok, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.int64), 0)


def warp_fixed(img, m, size=112):
    im = invert_affine(m)
    x = np.arange(size, dtype=np.float64)
    y = np.arange(size, dtype=np.float64)
    # saturate_cast<int>(double) rounds half to even (lrint), like np.rint.
    adelta = np.rint(im[0] * x * 1024).astype(np.int64)
    bdelta = np.rint(im[3] * x * 1024).astype(np.int64)
    x0 = np.rint((im[1] * y + im[2]) * 1024).astype(np.int64) + 16
    y0 = np.rint((im[4] * y + im[5]) * 1024).astype(np.int64) + 16
    X = (x0[:, None] + adelta[None, :]) >> 5   # 1/32 source pixel units
    Y = (y0[:, None] + bdelta[None, :]) >> 5
    sx, sy, fx, fy = X >> 5, Y >> 5, (X & 31)[..., None], (Y & 31)[..., None]
    w00, w01 = (32 - fy) * (32 - fx) * 32, (32 - fy) * fx * 32
    w10, w11 = fy * (32 - fx) * 32, fy * fx * 32
    t = (_sample(img, sy, sx) * w00 + _sample(img, sy, sx + 1) * w01
         + _sample(img, sy + 1, sx) * w10 + _sample(img, sy + 1, sx + 1) * w11)
    return np.clip((t + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


def warp_float(img, m, size=112):
    im = invert_affine(m)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    sxf = im[0] * u + im[1] * v + im[2]
    syf = im[3] * u + im[4] * v + im[5]
    sx, sy = np.floor(sxf).astype(np.int64), np.floor(syf).astype(np.int64)
    fx, fy = (sxf - sx)[..., None], (syf - sy)[..., None]
    t = ((_sample(img, sy, sx) * (1 - fx) + _sample(img, sy, sx + 1) * fx) * (1 - fy)
         + (_sample(img, sy + 1, sx) * (1 - fx) + _sample(img, sy + 1, sx + 1) * fx) * fy)
    return np.clip(np.floor(t + 0.5), 0, 255).astype(np.uint8)


def umeyama64(src, dst=ARCFACE_DST):
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    n = src.shape[0]
    sm, dm = src.mean(0), dst.mean(0)
    sd, dd = src - sm, dst - dm
    a = dd.T @ sd / n
    d = np.ones(2)
    if np.linalg.det(a) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(a)
    r = u @ np.diag(d) @ vt
    scale = (s @ d) / sd.var(0).sum()
    t = dm - scale * (r @ sm)
    return np.hstack([scale * r, t[:, None]])


# --------------------------------------------------------------------------
def diff_stats(a, b):
    d = np.abs(a.astype(int) - b.astype(int))
    return int((d > 0).sum()), int(d.max()), float(d.mean())


def main(argv):
    if len(argv) != 3:
        print("usage: cv2_emulation.py IMAGE_DIR REFERENCE_JSON", file=sys.stderr)
        return 2
    from insightface.utils import face_align
    import warnings
    warnings.filterwarnings("ignore", category=FutureWarning)
    image_dir, ref_path = argv[1:]
    with open(ref_path) as f:
        ref = json.load(f)
    print(f"OpenCV {cv2.__version__}, CPU features: {cv2.getCPUFeaturesLine()}")
    totals = {k: [0, 0, 0] for k in ("resize_fixed", "resize_fixed_simd", "resize_float",
                                     "warp_fixed", "warp_fixed_M64", "warp_float")}
    m_err = 0.0
    for entry in ref["images"]:
        img = cv2.imread(os.path.join(image_dir, entry["name"]))
        lb = letterbox(img)
        nw, nh = lb["new_width"], lb["new_height"]
        want = cv2.resize(img, (nw, nh))
        row = [entry["name"], f"{img.shape[1]}x{img.shape[0]}->{nw}x{nh}"]
        for key, got in (("resize_fixed", resize_fixed(img, nw, nh)),
                         ("resize_fixed_simd", resize_fixed(img, nw, nh, simd_rounding=True)),
                         ("resize_float", resize_float(img, nw, nh))):
            n, mx, _ = diff_stats(got, want)
            totals[key][0] += n
            totals[key][1] = max(totals[key][1], mx)
            totals[key][2] += want.size
            row.append(f"{key} {n}/{want.size} max {mx}")
        print("  " + "  ".join(row))
        for face in entry["faces"]:
            kps = np.array(face["landmarks"], np.float32)
            m = face_align.estimate_norm(kps, 112)
            m64 = umeyama64(kps)
            m_err = max(m_err, float(np.abs(m - m64).max()))
            crop = cv2.warpAffine(img, m, (112, 112), borderValue=0.0)
            for key, got in (("warp_fixed", warp_fixed(img, m)),
                             ("warp_fixed_M64", warp_fixed(img, m64)),
                             ("warp_float", warp_float(img, m))):
                n, mx, _ = diff_stats(got, crop)
                totals[key][0] += n
                totals[key][1] = max(totals[key][1], mx)
                totals[key][2] += crop.size
    print("totals (values differing from cv2 / values compared, max abs difference):")
    for key, (n, mx, size) in totals.items():
        if size:
            print(f"  {key:<18} {n:>9} / {size:<9} ({100.0 * n / size:.4f} %)  max {mx}")
    print(f"  skimage M (float32 landmarks) vs float64 Umeyama: max |dM| {m_err:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
