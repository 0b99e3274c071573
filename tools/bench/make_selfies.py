#!/usr/bin/env python3
"""Selfies at phone resolution for the guest-wait benchmark (facepass-bench-mesh guests).

Usage:  python tools/bench/make_selfies.py OUT_DIR

Writes into OUT_DIR:
    selfie-12mp.jpg    4032x3024 JPEG, quality 90: a phone's 12 MP selfie, the face of
                       identity 1 (check_models.draw_face) 1000 px wide near the centre,
                       on make_photos.py's textured background
    selfie-12mp.heic   the same pixels as HEIC, quality 90 (pillow-heif: iPhones send HEIC)
    selfie-page.jpg    the same selfie as the guest page sends it: scaled in the browser
                       to 1280 px on its long side (web/src/lib/image.ts, SELFIE_MAX_SIDE),
                       JPEG quality 90
    guest-photo.jpg    a 6000x4000 event photo with identity 1 (400 px) and two others:
                       the photo the guest must find, and the background indexing load

Needs numpy, opencv-python-headless and pillow-heif (tools/bench/mesh.sh installs the
last into .venv-parity).
"""

import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, HERE)
import check_models as cm  # noqa: E402
import make_photos as mp  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1612)
    h, w = 3024, 4032
    selfie = mp.background(h, w, rng)
    cm.draw_face(selfie, 1, 1500, 1000, 1000)
    bgr = cv2.cvtColor(selfie, cv2.COLOR_RGB2BGR)
    jpg = os.path.join(out, "selfie-12mp.jpg")
    cv2.imwrite(jpg, bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    page = cv2.resize(bgr, (1280, 960), interpolation=cv2.INTER_AREA)
    cv2.imwrite(os.path.join(out, "selfie-page.jpg"), page, [cv2.IMWRITE_JPEG_QUALITY, 90])
    import pillow_heif

    heif = pillow_heif.from_bytes(mode="RGB", size=(w, h), data=selfie.tobytes())
    heif.save(os.path.join(out, "selfie-12mp.heic"), quality=90)

    h, w = 4000, 6000
    photo = mp.background(h, w, rng)
    for ident, (x, y) in [(1, (900, 1500)), (2, (2800, 1400)), (3, (4600, 1600))]:
        cm.draw_face(photo, ident, x, y, 400)
    cv2.imwrite(os.path.join(out, "guest-photo.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    for name in sorted(os.listdir(out)):
        print(f"{name}: {os.path.getsize(os.path.join(out, name)) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
