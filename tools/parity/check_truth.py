#!/usr/bin/env python3
"""Check a parity JSON (reference or candidate) against the synthetic ground truth.

Usage:  python tools/parity/check_truth.py TRUTH_JSON RESULT_JSON [--summary PATH]

TRUTH_JSON is make_images.py's truth.json; RESULT_JSON is what reference.py (or
the Rust side) wrote for the same images.  Independent of compare.py: this says
whether the pipeline *works* on the test set, compare.py whether two pipelines
*agree*.  Checks, per image:
  * every face with expected_detected is found exactly once (IoU > 0.5), no
    other detections (close-ups and empty images must give nothing);
  * box and landmark errors, reported in original pixels and in detector-input
    pixels (error * det_scale); fails if the latter exceed --det-px (default 1.5,
    PNG) / --jpeg-det-px (default 2.0; JPEG blurs the face edges);
  * embeddings: same identity cosine >= --same-cos (0.99), different identities
    |cosine| <= --diff-cos (0.2), across all images of the file.
Exit 1 on any failure.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import fmt_of, match_faces  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("truth")
    ap.add_argument("result")
    ap.add_argument("--det-px", type=float, default=1.5)
    ap.add_argument("--jpeg-det-px", type=float, default=2.0)
    ap.add_argument("--same-cos", type=float, default=0.99)
    ap.add_argument("--diff-cos", type=float, default=0.2)
    ap.add_argument("--summary")
    args = ap.parse_args(argv[1:])
    with open(args.truth) as f:
        truth = {i["name"]: i for i in json.load(f)["images"]}
    with open(args.result) as f:
        result = json.load(f)

    problems, embs, ids = [], [], []
    stats = {}
    for img in result["images"]:
        t = truth.get(img["name"])
        if t is None:
            problems.append(f"{img['name']}: not in truth.json")
            continue
        fmt = fmt_of(img["name"])
        st = stats.setdefault(fmt, {"faces": 0, "max_box_px": 0.0, "max_lmk_px": 0.0,
                                    "max_box_det_px": 0.0, "max_lmk_det_px": 0.0})
        scale = t["letterbox"]["det_scale"]
        limit = args.jpeg_det_px if fmt == "jpeg" else args.det_px
        expected = [f for f in t["faces"] if f["expected_detected"]]
        matches, un_t, un_r = match_faces(expected, img["faces"])
        for i, j, _ in matches:
            tf, rf = expected[i], img["faces"][j]
            be = float(np.abs(np.array(tf["bbox"]) - rf["bbox"]).max())
            le = float(np.abs(np.array(tf["landmarks"]) - rf["landmarks"]).max())
            st["faces"] += 1
            st["max_box_px"] = max(st["max_box_px"], be)
            st["max_lmk_px"] = max(st["max_lmk_px"], le)
            st["max_box_det_px"] = max(st["max_box_det_px"], be * scale)
            st["max_lmk_det_px"] = max(st["max_lmk_det_px"], le * scale)
            if max(be, le) * scale > limit:
                problems.append(f"{img['name']}: identity {tf['identity']} (L={tf['size']}) error "
                                f"{max(be, le) * scale:.3f} detector px > {limit}")
            embs.append(rf["embedding"])
            ids.append(tf["identity"])
        for i in un_t:
            problems.append(f"{img['name']}: identity {expected[i]['identity']} "
                            f"(L={expected[i]['size']}) not detected")
        for j in un_r:
            problems.append(f"{img['name']}: unexpected detection {img['faces'][j]['bbox']}")
    if len(set(ids)) >= 2:
        e = np.array(embs, float)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        cos = e @ e.T
        ids_a = np.array(ids)
        same = ids_a[:, None] == ids_a[None, :]
        off = ~np.eye(len(ids), dtype=bool)
        same_min = float(cos[same & off].min()) if (same & off).any() else None
        diff_max = float(np.abs(cos[~same]).max())
        if same_min is not None and same_min < args.same_cos:
            problems.append(f"same-identity cosine {same_min:.4f} < {args.same_cos}")
        if diff_max > args.diff_cos:
            problems.append(f"different-identity |cosine| {diff_max:.4f} > {args.diff_cos}")
    else:
        same_min = diff_max = None
    for fmt, st in sorted(stats.items()):
        print(f"{fmt}: {st['faces']} faces found; max error box {st['max_box_px']:.3f} px "
              f"({st['max_box_det_px']:.3f} detector px), landmarks {st['max_lmk_px']:.3f} px "
              f"({st['max_lmk_det_px']:.3f} detector px)")
    if same_min is not None:
        print(f"embeddings: {len(ids)} faces, {len(set(ids))} identities, same-identity cosine min "
              f"{same_min:.4f}, different-identity |cosine| max {diff_max:.4f}")
    for p in problems:
        print(f"FAIL {p}")
    print("PASS" if not problems else f"FAIL: {len(problems)} problem(s)")
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"pass": not problems, "groups": stats, "same_identity_min_cos": same_min,
                       "different_identity_max_abs_cos": diff_max, "problems": problems}, f, indent=1)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
