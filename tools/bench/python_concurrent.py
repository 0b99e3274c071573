#!/usr/bin/env python3
"""The Python original with several photos in flight: P worker processes, each
with its own insightface FaceAnalysis of T/P ONNX Runtime threads, pulling
photos from one shared queue (the shape of Celery's prefork pool, which ran
the original's indexing). It is the fair counterpart of facepass-bench-vision's
"in-process (P in flight x 1 thread)" row: the same core budget, spent on
photos side by side.

Usage:
  python tools/bench/python_concurrent.py MODEL_DIR PHOTO_DIR --procs P --threads T
         --repeat R --out JSON

Per class and repeat: every photo of the class is put on the queue, the clock
runs from the first put to the last worker's report; photos/s = photos /
wall time, faces/s = faces found / wall time; median [min, max] over R.
Workers decode with cv2.imdecode and call app.get exactly as
python_baseline.py does (whose build_app sets the session options).
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("photo_dir")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="ORT threads in all (split over --procs)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", required=True)
    return ap.parse_args(argv[1:])


def worker(model_dir, photo_dir, threads, tasks, results, barrier):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cv2
    import numpy as np
    import python_baseline as pb

    cv2.setNumThreads(threads)
    with open(os.path.join(photo_dir, "manifest.json")) as fh:
        photos = json.load(fh)["photos"]
    jpegs = []
    for p in photos:
        with open(os.path.join(photo_dir, p["file"]), "rb") as fh:
            jpegs.append(fh.read())
    root = tempfile.TemporaryDirectory(prefix="facepass-bench-conc-")
    app, _ = pb.build_app(model_dir, threads, root.name)
    # Warm up on one photo so that the first timed photo pays no lazy set-up.
    app.get(cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR))
    results.put(("ready", 0))
    found = 0
    while True:
        item = tasks.get()
        if item == "quit":
            return
        if item is None:  # end of a round: report, then wait for the others
            results.put(("done", found))
            found = 0
            barrier.wait()
            continue
        img = cv2.imdecode(np.frombuffer(jpegs[item], np.uint8), cv2.IMREAD_COLOR)
        found += len(app.get(img))


def summary(values):
    v = sorted(values)
    return {"median": v[len(v) // 2], "min": v[0], "max": v[-1]}


def main():
    args = parse_args(sys.argv)
    if args.threads % args.procs:
        raise SystemExit("--threads must be a multiple of --procs")
    per = args.threads // args.procs
    with open(os.path.join(args.photo_dir, "manifest.json")) as fh:
        photos = json.load(fh)["photos"]
    classes = []
    for p in photos:
        if p["class"] not in classes:
            classes.append(p["class"])
    ctx = mp.get_context("spawn")  # a fresh interpreter each, as Celery's pool workers
    tasks, results = ctx.Queue(), ctx.Queue()
    barrier = ctx.Barrier(args.procs + 1)  # a worker takes one end-of-round marker only
    procs = [ctx.Process(target=worker,
                         args=(args.model_dir, args.photo_dir, per, tasks, results, barrier))
             for _ in range(args.procs)]
    for p in procs:
        p.start()
    for _ in procs:
        assert results.get(timeout=600)[0] == "ready"
    mode = f"insightface ({args.procs} processes x {per} thread{'s' if per > 1 else ''})"
    out = []
    for cls in classes:
        idx = [i for i, p in enumerate(photos) if p["class"] == cls]
        expected = sum(len(photos[i]["faces"]) for i in idx)
        photo_rates, face_rates, found_runs = [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for i in idx:
                tasks.put(i)
            for _ in procs:
                tasks.put(None)
            found = 0
            for _ in procs:
                kind, n = results.get(timeout=3600)
                assert kind == "done", kind
                found += n
            wall = time.perf_counter() - t0
            barrier.wait()
            photo_rates.append(len(idx) / wall)
            face_rates.append(found / wall)
            found_runs.append(found)
        r = {"mode": mode, "class": cls, "photos": len(idx), "faces": found_runs[0],
             "faces_expected": expected, "photos_per_s": summary(photo_rates),
             "faces_per_s": summary(face_rates)}
        print(f"{mode:<36} {cls:<12} {r['photos_per_s']['median']:7.3f} photos/s "
              f"[{r['photos_per_s']['min']:.3f}..{r['photos_per_s']['max']:.3f}]  "
              f"faces {found_runs[0]}/{expected}", flush=True)
        out.append(r)
    for _ in procs:
        tasks.put("quit")
    for p in procs:
        p.join(timeout=60)
    with open(args.out, "w") as fh:
        json.dump({"procs": args.procs, "threads": args.threads, "repeat": args.repeat,
                   "results": out}, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
