#!/usr/bin/env python3
"""Compare a candidate face-pipeline output with the insightface reference.

Usage:  python tools/parity/compare.py REFERENCE_JSON CANDIDATE_JSON
            [--box-px 1.0] [--crop-mad 1.0] [--min-cos 0.999]
            [--jpeg-box-px X] [--jpeg-crop-mad X] [--jpeg-min-cos X]
            [--summary PATH]

Both files use the schema written by reference.py:
  {"tool": ..., "images": [{"name", "width", "height",
     "faces": [{"bbox": [x1, y1, x2, y2], "score", "landmarks": [[x, y] x 5],
                "crop_rgb_b64": base64 of 112*112*3 RGB bytes,
                "embedding": [512 floats, L2-normalised]}]}]}

Images are matched by name (every reference image must be in the candidate and
vice versa, same width and height).  Within an image, faces are matched
greedily by IoU (highest first, IoU > 0.5).  The run fails (exit 1) on any
unmatched image or face, or any matched face with
  * a box coordinate or a landmark coordinate more than --box-px pixels off,
  * aligned crops whose mean absolute difference over all 112*112*3 values
    exceeds --crop-mad grey levels,
  * embedding cosine below --min-cos.
PNG and JPEG images are summarised separately (JPEG decoders differ by about a
grey level); the --jpeg-* options override the tolerances for *.jpg/*.jpeg
only and default to the general ones.  Exit 2 on unusable input.
"""

import argparse
import base64
import json
import math
import sys

import numpy as np

CROP_BYTES = 112 * 112 * 3


def fmt_of(name):
    n = name.lower()
    if n.endswith((".jpg", ".jpeg")):
        return "jpeg"
    if n.endswith(".png"):
        return "png"
    return "other"


def iou(a, b):
    """Plain IoU of (x1, y1, x2, y2) boxes (no +1)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_faces(ref, cand, min_iou=0.5):
    pairs = sorted(((iou(r["bbox"], c["bbox"]), i, j)
                    for i, r in enumerate(ref) for j, c in enumerate(cand)), reverse=True)
    used_r, used_c, matches = set(), set(), []
    for v, i, j in pairs:
        if v <= min_iou:
            break
        if i in used_r or j in used_c:
            continue
        used_r.add(i)
        used_c.add(j)
        matches.append((i, j, v))
    matches.sort()
    return (matches, [i for i in range(len(ref)) if i not in used_r],
            [j for j in range(len(cand)) if j not in used_c])


def decode_crop(face, label):
    raw = base64.b64decode(face["crop_rgb_b64"])
    if len(raw) != CROP_BYTES:
        raise ValueError(f"{label}: crop has {len(raw)} bytes, want {CROP_BYTES}")
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int16)


def face_metrics(r, c, label):
    rb, cb = np.array(r["bbox"], float), np.array(c["bbox"], float)
    rl, cl = np.array(r["landmarks"], float), np.array(c["landmarks"], float)
    if rb.shape != (4,) or cb.shape != (4,) or rl.shape != (5, 2) or cl.shape != (5, 2):
        raise ValueError(f"{label}: bbox must be 4 floats and landmarks 5 x 2")
    re_, ce = np.array(r["embedding"], float), np.array(c["embedding"], float)
    if re_.shape != ce.shape or re_.ndim != 1:
        raise ValueError(f"{label}: embedding shapes {re_.shape} vs {ce.shape}")
    nr, nc = np.linalg.norm(re_), np.linalg.norm(ce)
    cos = float(re_ @ ce / (nr * nc)) if nr > 0 and nc > 0 else float("nan")
    mad = float(np.abs(decode_crop(r, label) - decode_crop(c, label)).mean())
    return {
        "box_err": float(np.abs(rb - cb).max()),
        "landmark_err": float(np.abs(rl - cl).max()),
        "crop_mad": mad,
        "cosine": cos,
        "score_diff": float(abs(r["score"] - c["score"])),
    }


def new_group():
    return {"images": 0, "faces_compared": 0, "unmatched_reference": 0, "unmatched_candidate": 0,
            "max_box_err": 0.0, "max_landmark_err": 0.0, "max_crop_mad": 0.0, "min_cosine": None,
            "max_score_diff": 0.0, "failures": 0}


def add(group, m):
    group["faces_compared"] += 1
    group["max_box_err"] = max(group["max_box_err"], m["box_err"])
    group["max_landmark_err"] = max(group["max_landmark_err"], m["landmark_err"])
    group["max_crop_mad"] = max(group["max_crop_mad"], m["crop_mad"])
    group["max_score_diff"] = max(group["max_score_diff"], m["score_diff"])
    c, cur = m["cosine"], group["min_cosine"]
    if cur is None or math.isnan(c) or (not math.isnan(cur) and c < cur):
        group["min_cosine"] = c  # a NaN cosine (zero embedding) sticks


def load(path):
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: no 'images' list")
    by_name = {}
    for img in data["images"]:
        if img["name"] in by_name:
            raise ValueError(f"{path}: image {img['name']} listed twice")
        by_name[img["name"]] = img
    return data, by_name


def main(argv):
    ap = argparse.ArgumentParser(description="Compare face pipeline outputs (see module doc).")
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--box-px", type=float, default=1.0)
    ap.add_argument("--crop-mad", type=float, default=1.0)
    ap.add_argument("--min-cos", type=float, default=0.999)
    ap.add_argument("--jpeg-box-px", type=float)
    ap.add_argument("--jpeg-crop-mad", type=float)
    ap.add_argument("--jpeg-min-cos", type=float)
    ap.add_argument("--summary", help="write the summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="only failing faces and the summary")
    args = ap.parse_args(argv[1:])

    tol = {"png": {"box_px": args.box_px, "crop_mad": args.crop_mad, "min_cos": args.min_cos}}
    tol["other"] = tol["png"]
    tol["jpeg"] = {
        "box_px": args.box_px if args.jpeg_box_px is None else args.jpeg_box_px,
        "crop_mad": args.crop_mad if args.jpeg_crop_mad is None else args.jpeg_crop_mad,
        "min_cos": args.min_cos if args.jpeg_min_cos is None else args.jpeg_min_cos,
    }
    try:
        ref, ref_by = load(args.reference)
        cand, cand_by = load(args.candidate)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    groups = {"all": new_group()}
    problems = []
    print(f"reference: {ref.get('tool', '?')} ({args.reference})")
    print(f"candidate: {cand.get('tool', '?')} ({args.candidate})")
    for name in sorted(set(cand_by) - set(ref_by)):
        problems.append(f"{name}: in the candidate only")
    try:
        for name in sorted(ref_by):
            fmt = fmt_of(name)
            g = groups.setdefault(fmt, new_group())
            t = tol[fmt]
            rimg = ref_by[name]
            cimg = cand_by.get(name)
            if cimg is None:
                problems.append(f"{name}: missing from the candidate")
                continue
            for grp in (g, groups["all"]):
                grp["images"] += 1
            if (rimg["width"], rimg["height"]) != (cimg["width"], cimg["height"]):
                problems.append(f"{name}: size {rimg['width']}x{rimg['height']} vs "
                                f"{cimg['width']}x{cimg['height']}")
            rf, cf = rimg["faces"], cimg["faces"]
            matches, un_r, un_c = match_faces(rf, cf)
            lines = []
            for i, j, v in matches:
                label = f"{name} face {i}"
                m = face_metrics(rf[i], cf[j], label)
                bad = []
                if not m["box_err"] <= t["box_px"]:
                    bad.append("box")
                if not m["landmark_err"] <= t["box_px"]:
                    bad.append("landmarks")
                if not m["crop_mad"] <= t["crop_mad"]:
                    bad.append("crop")
                if not m["cosine"] >= t["min_cos"]:
                    bad.append("cosine")
                for grp in (g, groups["all"]):
                    add(grp, m)
                    grp["failures"] += bool(bad)
                if bad:
                    problems.append(f"{label}: {', '.join(bad)} out of tolerance "
                                    f"(box {m['box_err']:.4f}, landmarks {m['landmark_err']:.4f}, "
                                    f"crop MAD {m['crop_mad']:.4f}, cosine {m['cosine']:.6f})")
                if bad or not args.quiet:
                    x1, y1, x2, y2 = rf[i]["bbox"]
                    lines.append(f"  {i:>2} {j:>2}  {x1:8.1f} {y1:8.1f} {x2 - x1:6.1f}  "
                                 f"{rf[i]['score']:.4f} {cf[j]['score']:.4f}  {v:.4f}  "
                                 f"{m['box_err']:7.4f} {m['landmark_err']:7.4f} "
                                 f"{m['crop_mad']:7.4f} {m['cosine']:9.6f}  "
                                 f"{'FAIL ' + ','.join(bad) if bad else 'ok'}")
            for i in un_r:
                x1, y1, x2, y2 = rf[i]["bbox"]
                lines.append(f"  {i:>2}  -  {x1:8.1f} {y1:8.1f} {x2 - x1:6.1f}  "
                             f"{rf[i]['score']:.4f}    -    FAIL reference face not in candidate")
                problems.append(f"{name}: reference face {i} at ({x1:.1f}, {y1:.1f}) unmatched")
            for j in un_c:
                x1, y1, x2, y2 = cf[j]["bbox"]
                lines.append(f"   - {j:>2}  {x1:8.1f} {y1:8.1f} {x2 - x1:6.1f}     -   "
                             f"{cf[j]['score']:.4f}  FAIL candidate face not in reference")
                problems.append(f"{name}: candidate face {j} at ({x1:.1f}, {y1:.1f}) unmatched")
            for grp in (g, groups["all"]):
                grp["unmatched_reference"] += len(un_r)
                grp["unmatched_candidate"] += len(un_c)
            if lines or not args.quiet:
                print(f"\n{name}  {rimg['width']}x{rimg['height']}  faces ref {len(rf)} cand {len(cf)}")
            if lines:
                print("  ref cand      x1       y1   side  score_r score_c  IoU     "
                      "box_err lmk_err crop_MAD    cosine")
                print("\n".join(lines))
    except (ValueError, KeyError, TypeError, base64.binascii.Error) as e:
        print(f"error: malformed input: {e}", file=sys.stderr)
        return 2

    ok = not problems
    print("\nsummary" + ("" if ok else " (FAILED)"))
    print(f"  {'group':<6} {'images':>6} {'faces':>6} {'unmatched r/c':>13} {'max box':>8} "
          f"{'max lmk':>8} {'max MAD':>8} {'min cos':>9} {'max dscore':>10} {'failed':>6}")
    order = [k for k in ("png", "jpeg", "other") if k in groups] + ["all"]
    for k in order:
        g = groups[k]
        mc = "-" if g["min_cosine"] is None else f"{g['min_cosine']:.6f}"
        print(f"  {k:<6} {g['images']:>6} {g['faces_compared']:>6} "
              f"{g['unmatched_reference']:>6}/{g['unmatched_candidate']:<6} "
              f"{g['max_box_err']:8.4f} {g['max_landmark_err']:8.4f} {g['max_crop_mad']:8.4f} "
              f"{mc:>9} {g['max_score_diff']:10.6f} {g['failures']:>6}")
    print(f"  tolerances: png box/landmark {tol['png']['box_px']} px, crop MAD {tol['png']['crop_mad']}, "
          f"cosine >= {tol['png']['min_cos']}; jpeg {tol['jpeg']['box_px']} px, "
          f"{tol['jpeg']['crop_mad']}, >= {tol['jpeg']['min_cos']}")
    for p in problems:
        print(f"  FAIL {p}")
    print("PASS" if ok else f"FAIL: {len(problems)} problem(s)")
    if args.summary:
        summary = {"pass": ok, "reference": ref.get("tool"), "candidate": cand.get("tool"),
                   "tolerances": {k: tol[k] for k in ("png", "jpeg")},
                   "groups": {k: groups[k] for k in order}, "problems": problems}
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)  # a NaN cosine is written as NaN
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
