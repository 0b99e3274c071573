#!/usr/bin/env python3
"""Generate realistic synthetic event photos for the speed benchmarks.

Usage:  python tools/bench/make_photos.py OUT_DIR [--count N]

Needs numpy and opencv-python(-headless) (cv2.imencode writes the JPEGs), and
tools/fixtures/check_models.py (imported for the face pattern, so the faces
follow the synthetic face spec of tools/fixtures/make_models.py exactly).

Writes N photos (default 8) for each of three classes, plus OUT_DIR/manifest.json:

    "1-5 faces"    typical event photo     faces 250..600 px
    "6-15 faces"   small group             faces 250..450 px
    "16-30 faces"  group shot              faces 250..275 px (a grid of rows)

Photos are 24 MP JPEGs, quality 90 (OpenCV defaults otherwise: 4:2:0 chroma,
baseline, no EXIF), alternating 6000x4000 landscape (even index) and 4000x6000
portrait (odd index).  Photo k of a class is the same whatever N is (its
random generator is seeded from (SEED, class, k)), so --count 2 is a prefix of
--count 4.  The number of faces of photo k walks a fixed sequence of fractions
of the class range (k=0: the maximum, k=1: the minimum, then the middle, ...).

Background (RGB, float32, then rounded): a smooth random colour field (bicubic
upscale of a ~400 px grid), a linear gradient per channel, 25..60 random
alpha-blended rectangles, a mid-frequency luminance texture (bilinear upscale
of noise at 1/3 resolution, sigma 14) and per-pixel sensor noise (sigma 5).
R is capped at 120 before encoding (the spec allows <= 170): JPEG's chroma
subsampling overshoots R by up to ~65 levels at strong colour edges, and the
fixture detector's face mask starts at R = 191.5, so with the cap the decoded
background stays below it (manifest: decoded_bg_max_r, measured per photo).
Files are ~6 MB, decode in ~0.15-0.3 s with libjpeg-turbo.

Faces (drawn with check_models.draw_face: R = 255, Hadamard G/B cells of
identity 1..31, distinct within a photo) are placed on a jittered grid so that
in the detector's 640x640 letterboxed input (scale 640/6000 = 0.1067 or
426/4000 = 0.1065) their centres are, in Chebyshev (max-axis) distance, at
least
    230 px apart if the photo has a face of >= 61 px there (600 px -> 64:
        stride-32 band, window 320 = +-160 px + 20 px anchor offset + 32 px half face),
    130 px if its largest face is 30..61 px (stride-16 window +-64 + 10 + 32),
     90 px if all faces are < 30 px (stride-8 window +-32 + 5 + 15; needed to
        fit 30 faces: 7x5 grid in 640x426).
The fixture detector (and the proxy, which gives the same outputs) then finds
every face exactly once; python_baseline.py checks this against the manifest.

manifest.json: generator settings, and per photo: file, class, index,
width, height, orientation, det_scale (insightface's), bytes, sha256 (file),
pixels_sha256 (the RGB array before encoding: stable across OpenCV versions,
the JPEG bytes need not be), decoded_bg_max_r, and faces: identity, x, y, side
(the face is pixels x..x+side-1, y..y+side-1), box [x, y, x+side, y+side]
(pixel edges), box_insightface [x-0.5, y-0.5, x+side-0.5, y+side-0.5] and kps
(5 landmarks, x-0.5 + side*T/112, T the ArcFace template): what an exact
detector returns in insightface's convention.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import check_models as cm  # noqa: E402  (draw_face, ground_truth, TEMPLATE: the face spec)

SEED = 20240613
JPEG_QUALITY = 90
DET_SIZE = 640
BG_R_CAP = 120          # spec: background R <= 170; headroom for JPEG chroma overshoot
MASK_R = 191.5          # fixture detector: face mask is 0 up to R = 191.5

# (name, file slug, min faces, max faces, min side, max side) in original pixels
CLASSES = [
    ("1-5 faces", "faces01-05", 1, 5, 250, 600),
    ("6-15 faces", "faces06-15", 6, 15, 250, 450),
    ("16-30 faces", "faces16-30", 16, 30, 250, 275),
]
SIZES = {"landscape": (4000, 6000), "portrait": (6000, 4000)}  # (height, width)
# Fractions of the face-count range for photo k (ends first, then bisection).
COUNT_FRACTIONS = [1.0, 0.0, 0.5, 0.75, 0.25, 0.875, 0.375, 0.625, 0.125]


def spacing_for(max_det_side):
    """Minimum Chebyshev distance between face centres in detector pixels."""
    if max_det_side >= 61:
        return 230.0
    if max_det_side >= 30:
        return 130.0
    return 90.0


def letterbox_scales(h, w, size=DET_SIZE):
    """insightface RetinaFace.detect: new_w/new_h and det_scale for det_size (size, size)."""
    im_ratio = h / w
    if im_ratio > 1.0:
        new_h, new_w = size, int(size / im_ratio)
    else:
        new_w, new_h = size, int(size * im_ratio)
    return new_w / w, new_h / h, new_h / h  # x scale, y scale, det_scale


def background(h, w, rng):
    """Textured RGB background, uint8, R <= BG_R_CAP."""
    gh, gw = h // 400 + 3, w // 400 + 3
    grid = rng.uniform(20, 235, (gh, gw, 3)).astype(np.float32)
    img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img += rng.uniform(-40, 40, 3).astype(np.float32) * xs
    img += rng.uniform(-40, 40, 3).astype(np.float32) * ys
    for _ in range(int(rng.integers(25, 61))):
        rw, rh = (int(v) for v in rng.integers(60, 1800, 2))
        x0, y0 = int(rng.integers(-rw // 2, w)), int(rng.integers(-rh // 2, h))
        xa, xb, ya, yb = max(0, x0), min(w, x0 + rw), max(0, y0), min(h, y0 + rh)
        if xa >= xb or ya >= yb:
            continue
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        alpha = np.float32(rng.uniform(0.35, 0.9))
        sub = img[ya:yb, xa:xb]
        sub *= 1 - alpha
        sub += alpha * colour
    tex = rng.standard_normal((h // 3 + 1, w // 3 + 1), dtype=np.float32)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
    img += (np.float32(14.0) * tex)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(5.0)
    np.minimum(img[..., 0], BG_R_CAP, out=img[..., 0])
    np.clip(img, 0, 255, out=img)
    return np.rint(img).astype(np.uint8)


def layout(n, sides, h, w, rng):
    """Integer top-left corners for faces of the given sides (original px)."""
    sx, sy, _ = letterbox_scales(h, w)
    scale = min(sx, sy)
    det_sides = [s * scale for s in sides]
    spacing = spacing_for(max(det_sides))
    wd, hd = w * sx, h * sy
    margin = max(det_sides) / 2 + 4
    ax, ay = wd - 2 * margin, hd - 2 * margin
    cols, rows = int(ax // spacing) + 1, int(ay // spacing) + 1
    assert cols * rows >= n, f"{n} faces do not fit a {cols}x{rows} grid at spacing {spacing}"

    def axis(count, avail):
        if count == 1:  # one line: anywhere along the axis
            return [margin + avail / 2], avail / 2
        pitch = avail / (count - 1)
        return [margin + i * pitch for i in range(count)], (pitch - spacing) / 2

    cxs, jx = axis(cols, ax)
    cys, jy = axis(rows, ay)
    cells = rng.choice(cols * rows, n, replace=False)
    placed = []
    for cell, side in zip(cells, sides):
        # Jitter within the cell; the outer lines only jitter inwards (this
        # keeps the spacing: a face never leaves its own jitter interval).
        cx = min(max(cxs[cell % cols] + rng.uniform(-jx, jx), margin), margin + ax)
        cy = min(max(cys[cell // cols] + rng.uniform(-jy, jy), margin), margin + ay)
        # detector pixel centre c maps to original (c + 0.5) / scale - 0.5
        x = int(round((cx + 0.5) / sx - 0.5 - side / 2))
        y = int(round((cy + 0.5) / sy - 0.5 - side / 2))
        assert 0 <= x <= w - side and 0 <= y <= h - side, (x, y, side)
        placed.append((x, y, side))
    # Re-check the spacing on the final integer positions (1 px rounding slack).
    for i, (xi, yi, si) in enumerate(placed):
        for xj, yj, sj in placed[:i]:
            dx = abs((xi + si / 2) - (xj + sj / 2)) * sx
            dy = abs((yi + si / 2) - (yj + sj / 2)) * sy
            assert max(dx, dy) >= spacing - 1, (placed, spacing)
    return placed, spacing


def make_photo(class_idx, k):
    name, slug, lo, hi, smin, smax = CLASSES[class_idx]
    rng = np.random.default_rng([SEED, class_idx, k])
    orientation = "landscape" if k % 2 == 0 else "portrait"
    h, w = SIZES[orientation]
    frac = COUNT_FRACTIONS[k] if k < len(COUNT_FRACTIONS) else float(rng.uniform())
    n = lo + int(round(frac * (hi - lo)))
    sides = [int(s) for s in rng.integers(smin, smax + 1, n)]
    ids = [int(i) for i in rng.choice(31, n, replace=False) + 1]
    img = background(h, w, rng)
    faces_xy, spacing = layout(n, sides, h, w, rng)
    faces = []
    for (x, y, side), ident in zip(faces_xy, ids):
        cm.draw_face(img, ident, x, y, side)
        box, kps = cm.ground_truth(x, y, side)
        faces.append({
            "identity": ident, "x": x, "y": y, "side": side,
            "box": [x, y, x + side, y + side],
            "box_insightface": [float(v) for v in box],
            "kps": [[round(float(a), 4), round(float(b), 4)] for a, b in kps],
        })
    _, _, det_scale = letterbox_scales(h, w)
    meta = {"class": name, "index": k, "width": w, "height": h, "orientation": orientation,
            "det_scale": det_scale, "spacing_det_px": spacing, "faces": faces}
    return f"{slug}_{k:02d}_{orientation}.jpg", img, meta


def decoded_bg_max_r(data, faces, h, w):
    """Max R of the decoded JPEG outside the faces (each grown by 8 px: 4:2:0 chroma bleed)."""
    dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    r = dec[..., 2].copy()
    for f in faces:
        x, y, s = f["x"], f["y"], f["side"]
        r[max(0, y - 8):y + s + 8, max(0, x - 8):x + s + 8] = 0
    return int(r.max())


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=8, help="photos per class (default 8)")
    args = ap.parse_args(argv[1:])
    os.makedirs(args.out_dir, exist_ok=True)
    photos = []
    t_start = time.perf_counter()
    for ci, (name, *_rest) in enumerate(CLASSES):
        for k in range(args.count):
            t0 = time.perf_counter()
            fname, img, meta = make_photo(ci, k)
            pixels_sha = hashlib.sha256(img.tobytes()).hexdigest()
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            assert ok
            data = buf.tobytes()
            del img
            with open(os.path.join(args.out_dir, fname), "wb") as fh:
                fh.write(data)
            bg_r = decoded_bg_max_r(data, meta["faces"], meta["height"], meta["width"])
            entry = {"file": fname, **meta, "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(),
                     "pixels_sha256": pixels_sha, "decoded_bg_max_r": bg_r}
            photos.append(entry)
            warn = "  WARNING: background R reaches the face mask" if bg_r >= MASK_R else ""
            print(f"{fname}: {meta['width']}x{meta['height']}, {len(meta['faces'])} faces "
                  f"(sides {min(f['side'] for f in meta['faces'])}..{max(f['side'] for f in meta['faces'])}, "
                  f"spacing {meta['spacing_det_px']:.0f} det px), {len(data) / 1e6:.2f} MB, "
                  f"decoded bg max R {bg_r}, {time.perf_counter() - t0:.1f} s{warn}", flush=True)
    manifest = {
        "generator": "tools/bench/make_photos.py",
        "seed": SEED,
        "count_per_class": args.count,
        "jpeg_quality": JPEG_QUALITY,
        "jpeg_writer": f"OpenCV {cv2.__version__} cv2.imencode (4:2:0, baseline, no EXIF)",
        "background_r_cap": BG_R_CAP,
        "detector_input": [DET_SIZE, DET_SIZE],
        "classes": [{"name": c[0], "min_faces": c[2], "max_faces": c[3],
                     "min_side": c[4], "max_side": c[5]} for c in CLASSES],
        "spec": "tools/fixtures/make_models.py (synthetic face pattern)",
        "photos": photos,
    }
    with open(os.path.join(args.out_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    total_faces = sum(len(p["faces"]) for p in photos)
    print(f"{len(photos)} photos, {total_faces} faces, "
          f"{sum(p['bytes'] for p in photos) / 1e6:.1f} MB in {args.out_dir} "
          f"({time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
