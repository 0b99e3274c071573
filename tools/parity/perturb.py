#!/usr/bin/env python3
"""Write a deliberately perturbed copy of a parity JSON (self-test of compare.py).

Usage:  python tools/parity/perturb.py IN_JSON OUT_JSON MODE

MODE (each touches the first face of the first image that has one, unless said):
  box        x1 + 1.5 px                          -> compare.py must fail (box)
  landmark   landmark 2 (nose) y + 1.5 px         -> must fail (landmarks)
  crop       every crop byte + 2, saturating at 255 -> must fail (crop MAD ~1.6)
  embedding  rotated to cosine 0.998              -> must fail (cosine)
  drop       first face of every image removed    -> must fail (unmatched)
  extra      a copy of a face moved 300 px right  -> must fail (unmatched candidate)
  all        box + landmark + crop + embedding on every face
  within     every face: box/landmarks +-0.4 px, crop byte +1 on every fourth value
             (MAD <= 0.25), embedding cosine 0.9995 -> must pass the defaults
"""

import base64
import json
import sys

import numpy as np


def rotate(emb, cos):
    """Unit vector at cosine `cos` from emb (L2-normalised)."""
    e = np.array(emb, float)
    e /= np.linalg.norm(e)
    o = np.roll(e, 1) - e * (np.roll(e, 1) @ e)  # deterministic orthogonal direction
    o /= np.linalg.norm(o)
    return list(cos * e + np.sqrt(1 - cos * cos) * o)


def crop_add(face, delta, every=1):
    raw = np.frombuffer(base64.b64decode(face["crop_rgb_b64"]), np.uint8).astype(int)
    raw[::every] += delta
    face["crop_rgb_b64"] = base64.b64encode(np.clip(raw, 0, 255).astype(np.uint8).tobytes()).decode()


def perturb_face(face, mode):
    if mode in ("box", "all"):
        face["bbox"][0] += 1.5
    if mode in ("landmark", "all"):
        face["landmarks"][2][1] += 1.5
    if mode in ("crop", "all"):
        crop_add(face, 2)
    if mode in ("embedding", "all"):
        face["embedding"] = rotate(face["embedding"], 0.998)
    if mode == "within":
        face["bbox"] = [v + 0.4 for v in face["bbox"]]
        face["landmarks"] = [[x + 0.4, y - 0.4] for x, y in face["landmarks"]]
        crop_add(face, 1, every=4)
        face["embedding"] = rotate(face["embedding"], 0.9995)


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, mode = argv[1:]
    with open(src) as f:
        data = json.load(f)
    data["tool"] = f"{data.get('tool', '?')} perturbed:{mode}"
    with_faces = [img for img in data["images"] if img["faces"]]
    if mode in ("box", "landmark", "crop", "embedding"):
        perturb_face(with_faces[0]["faces"][0], mode)
    elif mode in ("all", "within"):
        for img in with_faces:
            for face in img["faces"]:
                perturb_face(face, mode)
    elif mode == "drop":
        for img in with_faces:
            img["faces"].pop(0)
    elif mode == "extra":
        img = with_faces[0]
        face = json.loads(json.dumps(img["faces"][0]))
        face["bbox"] = [face["bbox"][0] + 300, face["bbox"][1], face["bbox"][2] + 300, face["bbox"][3]]
        face["landmarks"] = [[x + 300, y] for x, y in face["landmarks"]]
        img["faces"].append(face)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    with open(dst, "w") as f:
        json.dump(data, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
