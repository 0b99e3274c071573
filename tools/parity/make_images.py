#!/usr/bin/env python3
"""Write the synthetic test images of the insightface parity harness.

Usage:  python tools/parity/make_images.py OUT_DIR

Draws a fixed set of event photos with synthetic faces (the face pattern of
shared/synth/src/lib.rs and tools/fixtures/make_models.py: an axis-aligned
square of side L with R = 255 and a 4x4 grid of cells whose G/B levels spell
row `identity` of the 32x32 Sylvester Hadamard matrix, 128 +- 80; backgrounds
keep R <= 170; faces at least 200 detector-input pixels apart, along x or y)
and writes each one twice:

    OUT_DIR/<name>.png   lossless, cv2.imwrite (BGR -> file RGB)
    OUT_DIR/<name>.jpg   cv2.imwrite, IMWRITE_JPEG_QUALITY 95, OpenCV's default
                         4:2:0 chroma subsampling (libjpeg-turbo bundled with
                         opencv-python-headless)

plus OUT_DIR/truth.json with the ground truth per image: faces (identity,
square, box and landmarks in insightface's convention: pixel centres on
integer coordinates, box = (x-0.5, y-0.5, x+L-0.5, y+L-0.5), landmarks =
top-left + L * ArcFace template / 112), the letterbox insightface 0.7.3 will
apply at det_size 640x640 (new size, det_scale) and whether the face is
expected to be detected (size in detector pixels 12..224; larger faces are
close-ups the fixture detector ignores, like real SCRFD).

Deterministic: pixels depend only on this file (numpy default_rng with fixed
seeds); JPEG bytes also depend on the libjpeg(-turbo) build inside cv2, so
truth.json records every file's SHA-256 and the OpenCV version.
"""

import hashlib
import json
import math
import os
import sys

import cv2
import numpy as np

# The synthetic face itself comes from the fixture checker, like
# tools/bench/make_photos.py, so every generator draws the same pattern.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from check_models import draw_face  # noqa: E402

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
DET_SIZE = 640          # insightface det_size (640, 640)
MIN_GAP = 200           # detector-input pixels between faces (check_models.py)
DETECTABLE = (12, 224)  # face side in detector pixels the fixture detector finds
JPEG_QUALITY = 95
SEED = 20250101

# name, width, height, face sides in detector-input pixels (one per face).
# Sides cover the three SCRFD strides (8: <32, 16: 32..63, 32: 64..224).
IMAGES = [
    ("p01_640x640", 640, 640, [200, 90, 40, 18]),
    ("p02_480x640_portrait", 480, 640, [150, 28]),
    ("p03_1280x960", 1280, 960, [70, 56, 44, 36, 24, 16]),     # exact 2x: cv2 uses INTER_AREA
    ("p04_1600x1200", 1600, 1200, [120, 64, 48, 30, 20]),
    ("p05_1200x1600_portrait", 1200, 1600, [110, 60, 26]),
    ("p06_2000x1333", 2000, 1333, [66, 52, 40, 33, 25, 14]),   # det_scale 426/1333
    ("p07_3000x2000", 3000, 2000, [100, 62, 34, 22]),          # x scale 640/3000 != det_scale 0.213
    ("p08_300x400_upscale", 300, 400, [120, 40]),              # upscaled x1.6
    ("p09_870x1200_portrait", 870, 1200, [96, 50, 30]),        # new_w = int(640/(1200/870)) = 463, not 464
    ("p10_800x600_empty", 800, 600, []),
    ("p11_480x640_closeup", 480, 640, [300]),                  # too large: nothing detected
    ("p12_1080x1920_portrait", 1080, 1920, [80, 45, 20]),     # det_scale 1/3
]


def letterbox_geometry(w, h, size=DET_SIZE):
    """insightface 0.7.3 SCRFD/RetinaFace.detect: new size and det_scale (float64)."""
    im_ratio = float(h) / w
    model_ratio = float(size) / size
    if im_ratio > model_ratio:
        new_h = size
        new_w = int(new_h / im_ratio)
    else:
        new_w = size
        new_h = int(new_w * im_ratio)
    return new_w, new_h, float(new_h) / h


def background(h, w, rng):
    """Smooth random colours, a few flat "clothes" rectangles, noise; R <= 170."""
    gh, gw = h // 64 + 2, w // 64 + 2
    grid = rng.uniform(0, 255, (gh, gw, 3))
    grid[..., 0] *= 150 / 255
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = (grid[y0][:, x0] * (1 - fy) * (1 - fx) + grid[y0 + 1][:, x0] * fy * (1 - fx)
           + grid[y0][:, x0 + 1] * (1 - fy) * fx + grid[y0 + 1][:, x0 + 1] * fy * fx)
    for _ in range(int(rng.integers(2, 6))):
        rw, rh = int(rng.integers(w // 8, w // 3)), int(rng.integers(h // 8, h // 3))
        rx, ry = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
        img[ry:ry + rh, rx:rx + rw] = [rng.uniform(0, 150), rng.uniform(0, 255), rng.uniform(0, 255)]
    img += rng.normal(0, 4, img.shape)
    img[..., 0] = np.minimum(img[..., 0], 170)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def apart(a, b, gap):
    (ax, ay, al), (bx, by, bl) = a, b
    return ax >= bx + bl + gap or bx >= ax + al + gap or ay >= by + bl + gap or by >= ay + al + gap


def place(w, h, sides, gap, rng, margin=4, tries=4000):
    """Random placement, every pair >= gap apart along x or y; all or nothing."""
    for _ in range(50):
        placed = []
        for side in sides:
            for _ in range(tries):
                if side + 2 * margin > min(w, h):
                    break
                x = int(rng.integers(margin, w - side - margin + 1))
                y = int(rng.integers(margin, h - side - margin + 1))
                if all(apart((x, y, side), p, gap) for p in placed):
                    placed.append((x, y, side))
                    break
            else:
                break
        if len(placed) == len(sides):
            return placed
    raise RuntimeError(f"cannot place faces {sides} in {w}x{h} with gap {gap}")


def make_scene(index, name, w, h, det_sides):
    rng = np.random.default_rng([SEED, index])
    new_w, new_h, det_scale = letterbox_geometry(w, h)
    sides = [max(4, int(round(s / det_scale))) for s in det_sides]
    gap = int(math.ceil(MIN_GAP / det_scale)) + 2
    layout = place(w, h, sides, gap, rng)
    ids = rng.choice(np.arange(1, 32), size=len(layout), replace=False)
    img = background(h, w, rng)
    faces = []
    for (x, y, side), ident in zip(layout, ids):
        draw_face(img, int(ident), x, y, side)
        x1, y1 = x - 0.5, y - 0.5
        det_side = side * det_scale
        faces.append({
            "identity": int(ident),
            "x": x, "y": y, "size": side,
            "bbox": [x1, y1, x1 + side, y1 + side],
            "landmarks": [[x1 + side * tx / 112.0, y1 + side * ty / 112.0]
                          for tx, ty in ARCFACE_TEMPLATE],
            "size_in_detector_px": det_side,
            "expected_detected": bool(DETECTABLE[0] <= det_side <= DETECTABLE[1]),
        })
    geometry = {"det_size": [DET_SIZE, DET_SIZE], "new_width": new_w, "new_height": new_h,
                "det_scale": det_scale}
    return img, faces, geometry


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv):
    if len(argv) != 2:
        print("usage: make_images.py OUT_DIR", file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    records = []
    for index, (name, w, h, det_sides) in enumerate(IMAGES):
        img, faces, geometry = make_scene(index, name, w, h, det_sides)
        bgr = np.ascontiguousarray(img[..., ::-1])
        for ext, fmt, params in (("png", "png", [cv2.IMWRITE_PNG_COMPRESSION, 6]),
                                 ("jpg", "jpeg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])):
            path = os.path.join(out, f"{name}.{ext}")
            if not cv2.imwrite(path, bgr, params):
                raise RuntimeError(f"cv2.imwrite failed: {path}")
            records.append({"name": f"{name}.{ext}", "format": fmt, "width": w, "height": h,
                            "sha256": sha256(path), "letterbox": geometry, "faces": faces})
        print(f"{name}: {w}x{h}, {len(faces)} faces, det_scale {geometry['det_scale']:.6f}, "
              f"resized to {geometry['new_width']}x{geometry['new_height']}")
    truth = {
        "generator": "tools/parity/make_images.py",
        "seed": SEED,
        "encoder": f"OpenCV {cv2.__version__} cv2.imwrite: PNG lossless; JPEG quality "
                   f"{JPEG_QUALITY}, default 4:2:0 chroma subsampling",
        "face_spec": "R=255 square, 4x4 Hadamard G/B cells (128+-80), background R<=170, "
                     f"faces >= {MIN_GAP} detector px apart",
        "images": records,
    }
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    print(f"wrote {len(records)} images and truth.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
