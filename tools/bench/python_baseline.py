#!/usr/bin/env python3
"""Measure the original Python system's path on benchmark photos: OpenCV JPEG
decode + insightface 0.7.3 FaceAnalysis detection + recognition, and, as the
floor, ONNX Runtime inference alone.

Usage:
  python tools/bench/python_baseline.py MODEL_DIR PHOTO_DIR --threads T --repeat R --out JSON
         [--cv2-threads N] [--no-floor] [--no-spin] [--wait-idle S] [--retries N]

Needs insightface==0.7.3, onnxruntime, opencv-python(-headless), numpy.
MODEL_DIR holds det.onnx and rec.onnx (fixture, proxy or buffalo_l's
det_10g/w600k_r50 renamed); PHOTO_DIR is written by make_photos.py (its
manifest.json gives the classes and the ground truth).

Baseline ("insightface"), per photo, timed with time.perf_counter:
    img   = cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_COLOR)
    faces = app.get(img)
  The JPEG bytes are read from disk once, before any timing.  app is
  FaceAnalysis(allowed_modules=['detection', 'recognition'],
  providers=['CPUExecutionProvider']) prepared with ctx_id=-1,
  det_size=(640, 640), det_thresh=0.5, over a temporary model root
  (root/models/bench/{det,rec}.onnx symlinks to MODEL_DIR).  app.get is
  unmodified insightface: RetinaFace.detect (cv2.resize letterbox,
  blobFromImage, session run, anchor decode, NMS 0.4), then for each face
  ArcFaceONNX.get (norm_crop = Umeyama + cv2.warpAffine 112x112, blobFromImage,
  session run with batch 1).  The detect call is wrapped only to split the time
  into decode / detect / recognise (recognise = app.get - detect).

Floor ("raw ORT"), per photo, timed: det_session.run on the photo's 640x640
  detector blob (prepared beforehand exactly as RetinaFace.detect does) +, if
  it has faces, rec_session.run on a [n, 3, 112, 112] batch of the aligned
  crops of the faces insightface found (norm_crop + blobFromImages as
  ArcFaceONNX.get_feat, prepared beforehand).  The sessions are insightface's
  own two sessions, so the options are identical.

Threads: insightface 0.7.3's model_zoo.get_model passes only providers and
  provider_options to onnxruntime.InferenceSession (no session options).  This
  script therefore wraps model_zoo.PickableInferenceSession.__init__ (the class
  insightface instantiates for every model) to add sess_options with
  intra_op_num_threads = T, inter_op_num_threads = 1 (other options ORT's
  defaults: ORT_ENABLE_ALL, sequential, spinning on).  prepare(ctx_id=-1) calls
  session.set_providers, which re-creates the session from the same initial
  options; the script checks get_session_options() afterwards.
  cv2.setNumThreads(--cv2-threads, default T) bounds OpenCV's resize /
  warpAffine / blob threads; JPEG decoding is single-threaded in libjpeg-turbo.

Schedule: one untimed pass over every photo (warm-up; its results give the
  accuracy check and the floor's inputs), one untimed floor pass over the
  first photo of each class, then R repeats; in each repeat, for each class:
  every photo through the baseline, then every photo through the floor.
  Per class and repeat: photos/s = photos / sum(per-photo times), faces/s =
  faces found / sum(per-photo times); reported as median [min, max] over R.

Contention: the machine's busy CPU time (/proc/stat) minus this process's own
  CPU time gives the share of the CPUs other processes used; it is measured
  just before the run and over each repeat, and reported.  --wait-idle S waits
  (up to S seconds) for others to drop below 10 % before starting; --retries N
  re-runs a repeat during which others used more than 5 % (at most N times in
  all; discarded repeats are listed in the JSON).  On a shared machine use e.g.
  --wait-idle 600 --retries 6.

Accuracy (from the warm-up pass, informational): detections are matched to
  the manifest's faces (IoU >= 0.5, greedy by score); missed faces, false
  positives and the largest box error (detector pixels) are reported, and the
  normalised embeddings are compared across photos by identity (meaningful
  only for the fixture / proxy models).
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("photo_dir")
    ap.add_argument("--threads", type=int, default=2, help="ORT intra-op threads (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (default 3)")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--cv2-threads", type=int, default=None, help="cv2.setNumThreads (default: --threads)")
    ap.add_argument("--no-floor", action="store_true", help="skip the raw ONNX Runtime floor")
    ap.add_argument("--no-spin", action="store_true",
                    help="set session.intra_op.allow_spinning=0 on both sessions (default: ORT's "
                         "default, spinning on, as the original system ran)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before starting (and before a retried repeat), wait up to SECONDS for "
                         "other processes to use < 10%% of the CPUs over 5 s (default 0: do not wait)")
    ap.add_argument("--retries", type=int, default=0,
                    help="run a repeat again when other processes used > 5%% of the CPUs during "
                         "it, at most this many times in all (default 0)")
    return ap.parse_args(argv[1:])


ARGS = parse_args(sys.argv) if __name__ == "__main__" else None
if ARGS is not None:  # before numpy loads its BLAS: keep every pool at T threads
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(ARGS.threads))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import insightface  # noqa: E402
from insightface.app import FaceAnalysis  # noqa: E402
from insightface.model_zoo import model_zoo  # noqa: E402
from insightface.utils import face_align  # noqa: E402


def session_options(threads, spin=True):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def inject_session_options(threads, spin=True):
    """Make every session insightface creates use our SessionOptions."""
    original = model_zoo.PickableInferenceSession.__init__

    def __init__(self, model_path, **kwargs):
        if kwargs.get("sess_options") is None:
            kwargs["sess_options"] = session_options(threads, spin)
        original(self, model_path, **kwargs)

    model_zoo.PickableInferenceSession.__init__ = __init__


def build_app(model_dir, threads, root, spin=True):
    pack = os.path.join(root, "models", "bench")
    os.makedirs(pack)
    for name in ("det.onnx", "rec.onnx"):
        src = os.path.abspath(os.path.join(model_dir, name))
        if not os.path.isfile(src):
            raise SystemExit(f"missing {src}")
        os.symlink(src, os.path.join(pack, name))
    inject_session_options(threads, spin)
    with contextlib.redirect_stdout(sys.stderr):  # insightface prints its routing
        app = FaceAnalysis(name="bench", root=root, providers=["CPUExecutionProvider"],
                           allowed_modules=["detection", "recognition"])
        app.prepare(ctx_id=-1, det_size=(640, 640), det_thresh=0.5)
    assert set(app.models) == {"detection", "recognition"}, app.models
    info = {}
    for task, model in app.models.items():
        sess = model.session
        so = sess.get_session_options()
        info[task] = {"class": type(model).__name__, "file": os.path.basename(model.model_file),
                      "providers": sess.get_providers(),
                      "intra_op_num_threads": so.intra_op_num_threads,
                      "inter_op_num_threads": so.inter_op_num_threads,
                      "graph_optimization_level": str(so.graph_optimization_level),
                      "execution_mode": str(so.execution_mode),
                      "intra_op_allow_spinning": config_entry(so, "session.intra_op.allow_spinning")}
        assert so.intra_op_num_threads == threads and so.inter_op_num_threads == 1, info[task]
        assert sess.get_providers() == ["CPUExecutionProvider"], sess.get_providers()
    return app, info


def config_entry(opts, key):
    try:
        return opts.get_session_config_entry(key)
    except RuntimeError:  # not set: ORT's default
        return "default"


class DetectTimer:
    """Wraps app.det_model.detect to accumulate its wall time."""

    def __init__(self, det_model):
        self.inner = det_model.detect
        self.elapsed = 0.0
        det_model.detect = self

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.elapsed += time.perf_counter() - t0


def det_blob(det_model, img):
    """RetinaFace.detect's pre-processing, verbatim (letterbox, blobFromImage)."""
    input_size = det_model.input_size
    im_ratio = float(img.shape[0]) / img.shape[1]
    model_ratio = float(input_size[1]) / input_size[0]
    if im_ratio > model_ratio:
        new_height = input_size[1]
        new_width = int(new_height / im_ratio)
    else:
        new_width = input_size[0]
        new_height = int(new_width * im_ratio)
    resized = cv2.resize(img, (new_width, new_height))
    det_img = np.zeros((input_size[1], input_size[0], 3), dtype=np.uint8)
    det_img[:new_height, :new_width, :] = resized
    return cv2.dnn.blobFromImage(det_img, 1.0 / det_model.input_std, tuple(det_img.shape[0:2][::-1]),
                                 (det_model.input_mean,) * 3, swapRB=True)


def rec_blob(rec_model, img, faces):
    """ArcFaceONNX.get + get_feat pre-processing for all faces at once."""
    crops = [face_align.norm_crop(img, landmark=f.kps, image_size=rec_model.input_size[0]) for f in faces]
    return cv2.dnn.blobFromImages(crops, 1.0 / rec_model.input_std, rec_model.input_size,
                                  (rec_model.input_mean,) * 3, swapRB=True)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def match(photo, faces):
    """Greedy IoU >= 0.5 matching of detections (by score) to the manifest."""
    truth = photo["faces"]
    used, pairs = set(), []
    for fi in sorted(range(len(faces)), key=lambda i: -float(faces[i].det_score)):
        box = [float(v) for v in faces[fi].bbox]
        best, best_iou = None, 0.5
        for ti, t in enumerate(truth):
            if ti not in used:
                v = iou(box, t["box_insightface"])
                if v >= best_iou:
                    best, best_iou = ti, v
        if best is not None:
            used.add(best)
            pairs.append((fi, best))
    box_err = max((np.abs(np.array(faces[fi].bbox, float) - truth[ti]["box_insightface"]).max()
                   * photo["det_scale"] for fi, ti in pairs), default=0.0)
    return pairs, len(truth) - len(pairs), len(faces) - len(pairs), box_err


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s, digits=2):
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def main():
    args = ARGS
    cv2_threads = args.threads if args.cv2_threads is None else args.cv2_threads
    cv2.setNumThreads(cv2_threads)
    with open(os.path.join(args.photo_dir, "manifest.json")) as fh:
        manifest = json.load(fh)
    photos = manifest["photos"]
    classes = []
    for p in photos:
        if p["class"] not in classes:
            classes.append(p["class"])
        with open(os.path.join(args.photo_dir, p["file"]), "rb") as fh:
            p["jpeg"] = fh.read()
    by_class = {c: [p for p in photos if p["class"] == c] for c in classes}

    idle_check = wait_for_idle(args.wait_idle)
    load_before = os.getloadavg()
    print(f"other processes used {100 * idle_check:.0f}% of the CPUs just before the run"
          if idle_check is not None else "no /proc/stat: CPU contention not measured", flush=True)
    root = tempfile.TemporaryDirectory(prefix="facepass-bench-")  # kept for the whole run
    t0 = time.perf_counter()
    app, sess_info = build_app(args.model_dir, args.threads, root.name, spin=not args.no_spin)
    load_s = time.perf_counter() - t0
    det_model, rec_model = app.models["detection"], app.models["recognition"]
    timer = DetectTimer(det_model)
    print(f"models loaded in {load_s:.1f} s: {json.dumps(sess_info)}", flush=True)

    def run_baseline(p):
        det_before = timer.elapsed
        t0 = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(p["jpeg"], np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        faces = app.get(img)
        t2 = time.perf_counter()
        det = timer.elapsed - det_before
        return {"total": t2 - t0, "decode": t1 - t0, "detect": det, "recognise": t2 - t1 - det,
                "faces": len(faces)}, img, faces

    det_in, det_out = det_model.session.get_inputs()[0].name, det_model.output_names
    rec_in, rec_out = rec_model.session.get_inputs()[0].name, rec_model.output_names

    def run_floor(p):
        blob, crops = p["floor_det"], p["floor_rec"]
        t0 = time.perf_counter()
        det_model.session.run(det_out, {det_in: blob})
        t1 = time.perf_counter()
        if crops is not None:
            rec_model.session.run(rec_out, {rec_in: crops})
        t2 = time.perf_counter()
        return {"total": t2 - t0, "detect": t1 - t0, "recognise": t2 - t1,
                "faces": 0 if crops is None else int(crops.shape[0])}

    # Warm-up pass: accuracy and floor inputs.
    accuracy = {c: {"photos": 0, "manifest_faces": 0, "found": 0, "matched": 0, "missed": 0,
                    "false_positives": 0, "max_box_err_det_px": 0.0} for c in classes}
    embs, ids = [], []
    t0 = time.perf_counter()
    for p in photos:
        res, img, faces = run_baseline(p)
        pairs, missed, fps, box_err = match(p, faces)
        a = accuracy[p["class"]]
        a["photos"] += 1
        a["manifest_faces"] += len(p["faces"])
        a["found"] += len(faces)
        a["matched"] += len(pairs)
        a["missed"] += missed
        a["false_positives"] += fps
        a["max_box_err_det_px"] = max(a["max_box_err_det_px"], float(box_err))
        for fi, ti in pairs:
            embs.append(faces[fi].normed_embedding)
            ids.append(p["faces"][ti]["identity"])
        p["found"] = len(faces)
        p["floor_det"] = det_blob(det_model, img)
        p["floor_rec"] = rec_blob(rec_model, img, faces) if faces else None
        if missed or fps:
            print(f"  {p['file']}: {len(faces)} found / {len(p['faces'])} in manifest, "
                  f"{missed} missed, {fps} false positives", flush=True)
        del img, faces
    warm_s = time.perf_counter() - t0
    embedding_check = None
    if len(ids) >= 2:
        e, ids_a = np.array(embs), np.array(ids)
        cos = e @ e.T
        same = ids_a[:, None] == ids_a[None, :]
        off = ~np.eye(len(ids_a), dtype=bool)
        embedding_check = {
            "faces": len(ids), "identities": len(set(ids)),
            "same_identity_cos_min": float(cos[same & off].min()) if (same & off).any() else None,
            "different_identity_abs_cos_max": float(np.abs(cos[~same]).max()) if (~same).any() else None,
        }
    print(f"warm-up pass {warm_s:.1f} s; accuracy: {json.dumps(accuracy)}; "
          f"embeddings: {json.dumps(embedding_check)}", flush=True)
    if not args.no_floor:
        for c in classes:
            run_floor(by_class[c][0])

    # Timed repeats.  A repeat during which other processes used more than
    # CONTENDED of the CPUs is discarded and run again (at most --retries times).
    per_photo = {c: {"baseline": [], "floor": []} for c in classes}
    repeat_contention, discarded = [], []
    retries = args.retries
    while len(repeat_contention) < args.repeat:
        r = len(repeat_contention) + 1
        rsnap = cpu_snapshot()
        rep = {c: {"baseline": None, "floor": None} for c in classes}
        for c in classes:
            rows = [run_baseline(p)[0] for p in by_class[c]]
            rep[c]["baseline"] = rows
            line = f"repeat {r}/{args.repeat} {c}: baseline {sum(x['total'] for x in rows):.2f} s"
            if not args.no_floor:
                frows = [run_floor(p) for p in by_class[c]]
                rep[c]["floor"] = frows
                line += f", floor {sum(x['total'] for x in frows):.2f} s"
            print(line, flush=True)
        share = other_cpu_fraction(rsnap, cpu_snapshot())
        if share is not None:
            print(f"repeat {r}: other processes used {100 * share:.1f}% of the CPUs", flush=True)
        if share is not None and share > CONTENDED and retries > 0:
            retries -= 1
            discarded.append({"other_processes_cpu_share": share,
                              "seconds": {c: {k: sum(x["total"] for x in v) for k, v in rep[c].items() if v}
                                          for c in classes}})
            print(f"repeat {r} discarded (contended); {retries} retries left", flush=True)
            wait_for_idle(args.wait_idle)
            continue
        repeat_contention.append(share)
        for c in classes:
            for kind in ("baseline", "floor"):
                if rep[c][kind] is not None:
                    per_photo[c][kind].append(rep[c][kind])
    load_after = os.getloadavg()
    known = [v for v in repeat_contention if v is not None]
    contention = sum(known) / len(known) if known else None

    results = {}
    for c in classes:
        n = len(by_class[c])
        out = {"photos": n, "manifest_faces": accuracy[c]["manifest_faces"]}
        for kind in ("baseline", "floor"):
            reps = per_photo[c][kind]
            if not reps:
                continue
            totals = [sum(x["total"] for x in rows) for rows in reps]
            faces = [sum(x["faces"] for x in rows) for rows in reps]
            stage_keys = [k for k in reps[0][0] if k not in ("total", "faces")]
            out[kind] = {
                "faces_found_per_repeat": faces,
                "seconds_per_repeat": totals,
                "photos_per_s": summary([n / t for t in totals]),
                "faces_per_s": summary([f / t for f, t in zip(faces, totals)]),
                "ms_per_photo_mean_by_stage": {
                    k: statistics.median(1e3 * sum(x[k] for x in rows) / n for rows in reps)
                    for k in ["total"] + stage_keys},
                "per_photo_seconds": [[round(x["total"], 5) for x in rows] for rows in reps],
            }
        results[c] = out

    report = {
        "tool": "tools/bench/python_baseline.py",
        "model_dir": os.path.abspath(args.model_dir),
        "photo_dir": os.path.abspath(args.photo_dir),
        "threads": args.threads, "cv2_threads": cv2_threads, "repeat": args.repeat,
        "ort_spinning": not args.no_spin,
        "versions": {"python": platform.python_version(), "insightface": insightface.__version__,
                     "onnxruntime": ort.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "machine": {"cpus": os.cpu_count(), "processor": cpu_model(),
                    "loadavg_before": load_before, "loadavg_after": load_after,
                    "other_processes_cpu_share_before": idle_check,
                    "other_processes_cpu_share_during_timed_repeats": contention,
                    "other_processes_cpu_share_per_repeat": repeat_contention,
                    "discarded_contended_repeats": discarded},
        "sessions": sess_info, "model_load_s": load_s, "warmup_pass_s": warm_s,
        "accuracy": accuracy, "embedding_check": embedding_check,
        "timed": {"baseline": "cv2.imdecode + FaceAnalysis.get (detect + per-face recognise, batch 1)",
                  "floor": "det session.run on the prepared 640x640 blob + rec session.run on the "
                           "photo's prepared [n,3,112,112] crops (one batch)"},
        "classes": results,
    }
    root.cleanup()
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=1)
        fh.write("\n")

    print(f"\nthreads T={args.threads} (cv2 {cv2_threads}), R={args.repeat}; median [min, max] over repeats; "
          f"loadavg before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if contention is not None:
        print(f"other processes used {100 * contention:.1f}% of the CPUs during the kept repeats "
              f"(mean; {len(discarded)} contended repeats discarded)"
              + ("  WARNING: contended, figures are pessimistic" if contention > CONTENDED else ""))
    hdr = f"{'class':12s} {'photos':>6s} {'faces':>9s}  {'photos/s':>22s}  {'faces/s':>22s}  ms/photo"
    for kind, stages in (("baseline (decode + insightface)", "decode/detect/recognise"),
                         ("floor (raw ORT det + batched rec)", "detect/recognise")):
        key = kind.split()[0]
        if not any(key in results[c] for c in classes):
            continue
        print(f"\n{kind}")
        print(hdr + f" ({stages})")
        for c in classes:
            if key not in results[c]:
                continue
            res = results[c][key]
            ms = res["ms_per_photo_mean_by_stage"]
            parts = "/".join(f"{ms[k]:.0f}" for k in ms if k != "total")
            print(f"{c:12s} {results[c]['photos']:6d} {res['faces_found_per_repeat'][0]:4d}/"
                  f"{results[c]['manifest_faces']:<4d}  {fmt(res['photos_per_s']):>22s}  "
                  f"{fmt(res['faces_per_s']):>22s}  {ms['total']:.0f} ({parts})")
    print(f"\nwrote {args.out}")
    return 0


CONTENDED = 0.05  # share of the machine's CPUs used by other processes


def wait_for_idle(seconds):
    """Measure other processes' CPU share (2 s, or 5 s windows while waiting up to
    `seconds` for it to drop below 10 %); returns the last share (None: unknown)."""
    deadline = time.perf_counter() + seconds
    while True:
        snap = cpu_snapshot()
        time.sleep(5.0 if seconds else 2.0)
        share = other_cpu_fraction(snap, cpu_snapshot())
        if share is None or share < 0.10 or time.perf_counter() >= deadline:
            return share
        print(f"waiting for an idle machine: others use {100 * share:.0f}% of the CPUs", flush=True)


def cpu_snapshot():
    """(machine busy CPU seconds from /proc/stat, this process's CPU seconds, wall)."""
    busy = None
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        busy = (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    except (OSError, ValueError):
        pass
    t = os.times()
    return busy, t.user + t.system, time.perf_counter()


def other_cpu_fraction(before, after):
    """Share of the machine's CPUs used by other processes between two snapshots."""
    if before[0] is None or after[0] is None:
        return None
    wall = after[2] - before[2]
    other = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, other) / (wall * (os.cpu_count() or 1))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
