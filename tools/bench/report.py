#!/usr/bin/env python3
"""Side-by-side report of one benchmark run (tools/bench/run.sh):

    python tools/bench/report.py PYTHON_JSON FACEPASS_JSON [CONCURRENT_JSON]

PYTHON_JSON from python_baseline.py (insightface 0.7.3 and its raw ONNX
Runtime floor), FACEPASS_JSON from facepass-bench-vision. Prints a Markdown
table per class with medians and [min..max] over the repeats, and the ratios
the vision issue sets targets for: FacePass / insightface photos/s (target
>= 2 on 1-5 faces, >= 1 everywhere), FacePass's overhead above its own raw
inference (target <= 15 %), and batched / one-at-a-time embedding (>= 1.5).
CONCURRENT_JSON (python_concurrent.py) adds the table of several photos in
flight on the same core budget, both sides; FacePass's decode-only rows give
the decoding part of its overhead next to cv2.imdecode's.
"""
import json
import sys


def rate(r, key="photos_per_s"):
    v = r[key]
    return v["median"], v["min"], v["max"]


def fmt(v):
    return f"{v[0]:.3f} [{v[1]:.3f}..{v[2]:.3f}]"


def main(argv):
    py = json.load(open(argv[1]))
    fp = json.load(open(argv[2]))
    rows = {}
    for r in fp["results"]:
        rows.setdefault(r["class"], {})[r["mode"]] = r
    print(f"threads: FacePass {fp['threads']}, insightface {py['threads']}; repeats {fp['repeat']}\n")
    conc = json.load(open(argv[3])) if len(argv) > 3 else None
    crow = {r["class"]: r for r in conc["results"]} if conc else {}
    # What a studio gets: the services' default configuration against the
    # original in both of its shapes, each target against the faster one.
    flight_defaults = next((m for r in rows.values() for m in r
                            if "in flight" in m and m.endswith("defaults)") and not m.startswith("INT8")), None)
    print("**Defaults against the original** (photos/s, median [min..max]; the ratio is FacePass's faster shape over insightface's faster shape)\n")
    print("| class | insightface, 1 photo at a time | insightface, 2 processes x 1 thread | FacePass defaults, 1 photo at a time | FacePass defaults, photos in flight | FacePass / insightface | faces found (defaults / expected) |")
    print("|---|---|---|---|---|---|---|")
    for cls, c in py["classes"].items():
        f = rows.get(cls, {})
        if "in-process (defaults)" not in f:
            continue
        one = rate(c["baseline"])
        two = rate(crow[cls]) if cls in crow else None
        d1 = rate(f["in-process (defaults)"])
        d2 = rate(f[flight_defaults]) if flight_defaults and flight_defaults in f else None
        best_py = max(one[0], two[0] if two else 0)
        best_fp = max(d1[0], d2[0] if d2 else 0)
        found = f["in-process (defaults)"].get("faces")
        expected = f["in-process (defaults)"].get("faces_expected")
        print(f"| {cls} | {fmt(one)} | {fmt(two) if two else '-'} | {fmt(d1)} | {fmt(d2) if d2 else '-'} | **{best_fp / best_py:.2f}x** | {found} / {expected} |")
    print()
    # The opt-in fast tier: the same defaults on the pack's INT8 variant.
    int8 = next((m for r in rows.values() for m in r if m.startswith("INT8 pack")), None)
    if int8:
        print("**The INT8 tier** (opt-in; photos/s, median [min..max]): the defaults with photos in flight on the INT8 variant of the same pack (tools/models/quantize.py)\n")
        print("| class | insightface, faster shape | FacePass defaults (FP32), in flight | FacePass INT8, in flight | INT8 / insightface | INT8 / FP32 | faces found (INT8 / expected) |")
        print("|---|---|---|---|---|---|---|")
        for cls, c in py["classes"].items():
            f = rows.get(cls, {})
            if int8 not in f or not flight_defaults or flight_defaults not in f:
                continue
            one = rate(c["baseline"])
            best_py = max(one, rate(crow[cls]), key=lambda v: v[0]) if cls in crow else one
            fp32 = rate(f[flight_defaults])
            q = rate(f[int8])
            print(f"| {cls} | {fmt(best_py)} | {fmt(fp32)} | {fmt(q)} | **{q[0] / best_py[0]:.2f}x** | {q[0] / fp32[0]:.2f}x | {f[int8].get('faces')} / {f[int8].get('faces_expected')} |")
        print()
    # The first pass's canvas: fitted (the default) against insightface's square.
    squares = [(cls, rows[cls]) for cls in py["classes"] if "in-process (defaults, square canvas)" in rows.get(cls, {})]
    if squares:
        print("**First pass canvas** (defaults, 1 photo at a time, photos/s): fitted against insightface's 640x640 square\n")
        print("| class | square | fitted (default) | fitted / square |")
        print("|---|---|---|---|")
        for cls, f in squares:
            sq = rate(f["in-process (defaults, square canvas)"])
            fi = rate(f["in-process (defaults)"])
            print(f"| {cls} | {fmt(sq)} | {fmt(fi)} | {fi[0] / sq[0]:.2f}x |")
        print()
    # A run of some rows only (--only, as tools/bench/gpu.sh makes) has no
    # parity or decode rows: those tables are left out.
    parity_rows = ["in-process (parity)", "in-process (fine pass always)", "in-process (reduced decode)",
                   "in-process (fine pass always, reduced decode)", "gRPC (parity)", "raw ONNX Runtime"]
    parity_classes = [(cls, c) for cls, c in py["classes"].items()
                      if all(m in rows.get(cls, {}) for m in parity_rows)]
    if parity_classes:
        print("| class | insightface photos/s | raw ORT (Python) | FacePass in-process (parity) | FacePass in-process (reduced decode) | FacePass in-process (fine pass always) | FacePass in-process (fine pass always, reduced decode) | FacePass gRPC | raw ORT (Rust) | FacePass / insightface (parity; reduced decode) | overhead above raw ORT |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for cls, c in parity_classes:
        f = rows[cls]
        base = rate(c["baseline"])
        floor_py = rate(c["floor"])
        par = rate(f["in-process (parity)"])
        fine = rate(f["in-process (fine pass always)"])
        red = rate(f["in-process (reduced decode)"])
        fine_red = rate(f["in-process (fine pass always, reduced decode)"])
        grpc = rate(f["gRPC (parity)"])
        raw = rate(f["raw ONNX Runtime"])
        ratio = par[0] / base[0]
        overhead = raw[0] / par[0] - 1
        print(f"| {cls} | {fmt(base)} | {fmt(floor_py)} | {fmt(par)} | {fmt(red)} | {fmt(fine)} | {fmt(fine_red)} | {fmt(grpc)} | {fmt(raw)} | {ratio:.2f}x; {red[0] / base[0]:.2f}x | {overhead * 100:.0f} % |")
    decode_classes = [(cls, c) for cls, c in py["classes"].items() if "decode full" in rows.get(cls, {})]
    if decode_classes:
        print("\n| class | decode: cv2.imdecode (ms) | FacePass full (ms) | FacePass 1/2 DCT, the defaults' (ms) | FacePass 1/8 DCT (ms) |")
        print("|---|---|---|---|---|")
    for cls, c in decode_classes:
        f = rows[cls]
        cv = c["baseline"]["ms_per_photo_mean_by_stage"]["decode"]
        full = 1e3 / f["decode full"]["photos_per_s"]["median"]
        eighth = 1e3 / f["decode 1/8 (DCT)"]["photos_per_s"]["median"]
        half = f.get("decode 1/2 (DCT)")
        half = f"{1e3 / half['photos_per_s']['median']:.0f}" if half else "-"
        print(f"| {cls} | {cv:.0f} | {full:.0f} | {half} | {eighth:.0f} |")
    if conc:
        labels = []
        for r in rows.values():
            labels += [m for m in r if "in flight" in m and m not in labels]
        print(f"\nseveral photos in flight, {conc['threads']} threads in all:\n")
        head = " | ".join(f"FacePass {m} | / insightface" for m in labels)
        print(f"| class | {conc['results'][0]['mode']} | {head} | insightface, 1 photo at a time x {py['threads']} threads | FacePass, 1 photo at a time |")
        print("|---|---|" + "---|---|" * len(labels) + "---|---|")
        for cls, c in py["classes"].items():
            f = rows.get(cls, {})
            if cls not in crow:
                continue
            a = rate(crow[cls])
            cells = " | ".join(f"{fmt(rate(f[m]))} | {rate(f[m])[0] / a[0]:.2f}x" for m in labels)
            one_fp = fmt(rate(f["in-process (parity)"])) if "in-process (parity)" in f else "-"
            print(f"| {cls} | {fmt(a)} | {cells} | {fmt(rate(c['baseline']))} | {one_fp} |")
    faces = rows.get("faces")
    if not faces:
        return
    one = faces["embed one at a time"]["faces_per_s"]["median"]
    print(f"\nembedding, 16 concurrent callers: one at a time {one:.1f} faces/s", end="")
    for mode, r in faces.items():
        if mode.startswith("embed batched"):
            b = r["faces_per_s"]["median"]
            print(f"; {mode[6:]} {b:.1f} faces/s = {b / one:.2f}x", end="")
    print()
    sweep = [(m, r) for m, r in faces.items() if m.startswith("raw recogniser batch")]
    if sweep:
        base = sweep[0][1]["faces_per_s"]["median"]
        print("\nrecogniser alone, faces/s by batch size: " + ", ".join(
            f"{m.split()[-1]}: {fmt(rate(r, 'faces_per_s'))} ({rate(r, 'faces_per_s')[0] / base:.2f}x)"
            for m, r in sweep))


if __name__ == "__main__":
    main(sys.argv)
