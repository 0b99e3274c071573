#!/usr/bin/env python3
"""The parity image set on real photos (issue 11): real faces at every size the
detector sees, from the public-domain photos the set-up fetches
(tools/models/real_pack.py -> .facepass/photos/real).

Usage:  python tools/parity/real_images.py PHOTO_DIR OUT_DIR

Writes into OUT_DIR:
  - the photos as they are (JPEG, plus the RGBA PNG 32bit.png): the portraits
    of Barack Obama and Joe Biden, the two partial-face crops, and the 1927
    Solvay conference photo at full size (3000x2171, greyscale; its 29 faces
    are about 18 px wide in the 640x640 detector input);
  - Solvay crops, lossless PNG written by OpenCV from the decoded photo, whose
    widths put the faces at about 35, 70, 140 and 280 px in the detector input
    (smaller crops are upscaled by the letterbox, as a phone's close-up is);
  - the Solvay photo rescaled to 1500 px wide with INTER_AREA (another
    decoder-independent copy at the smallest face size).
  - images.json: each file's name, SHA-256, size, and where it comes from.

Deterministic: two runs write identical bytes (PNG by OpenCV's libpng).
"""

import hashlib
import json
import os
import shutil
import sys

import cv2

ORIGINALS = (
    "obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg",
    "obama_partial_face2.jpg", "biden.jpg", "32bit.png", "solvay_conference_1927.jpg",
)
SOLVAY = "solvay_conference_1927.jpg"
# (name, x, y, width, height) in the 3000x2171 photo. The faces are about 75 px
# wide there, so a crop W px wide puts them at about 75 * 640 / W px in the
# 640x640 input (both axes scale by the same factor; crops are landscape).
# Regions are picked so that no face is cut by the crop's edge (a cut face
# scores near the 0.5 threshold, where the two sides could legitimately differ
# in whether it counts).
CROPS = (
    ("solvay_crop1400_faces35.png", 800, 560, 1400, 980),
    ("solvay_crop700_faces70.png", 1150, 700, 700, 490),
    ("solvay_crop350_faces140.png", 1300, 780, 350, 245),
    ("solvay_crop175_faces280.png", 1380, 820, 175, 123),
)
RESCALED = ("solvay_rescaled1500_faces18.png", 1500)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, out = argv[1], argv[2]
    os.makedirs(out, exist_ok=True)
    entries = []
    for name in ORIGINALS:
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            print(f"{path} is missing: run python3 tools/models/real_pack.py", file=sys.stderr)
            return 2
        shutil.copyfile(path, os.path.join(out, name))
        entries.append({"name": name, "from": name})
    solvay = cv2.imread(os.path.join(src, SOLVAY))  # BGR, as the reference reads it
    h, w = solvay.shape[:2]
    for name, x, y, cw, ch in CROPS:
        assert x + cw <= w and y + ch <= h, (name, w, h)
        cv2.imwrite(os.path.join(out, name), solvay[y:y + ch, x:x + cw])
        entries.append({"name": name, "from": SOLVAY, "crop": [x, y, cw, ch]})
    name, width = RESCALED
    height = round(h * width / w)
    cv2.imwrite(os.path.join(out, name),
                cv2.resize(solvay, (width, height), interpolation=cv2.INTER_AREA))
    entries.append({"name": name, "from": SOLVAY, "resize": [width, height]})
    for e in entries:
        p = os.path.join(out, e["name"])
        img = cv2.imread(p)
        e.update({"sha256": sha256(p), "width": int(img.shape[1]), "height": int(img.shape[0])})
    with open(os.path.join(out, "images.json"), "w") as f:
        json.dump({"source": os.path.abspath(src), "images": entries}, f, indent=1)
    print(f"{len(entries)} real images -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
