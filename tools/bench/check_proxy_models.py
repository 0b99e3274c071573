#!/usr/bin/env python3
"""Check the proxy models written by make_proxy_models.py with onnxruntime.

Usage:  python tools/bench/check_proxy_models.py DIR

* Builds the fixture models in memory (tools/fixtures/make_models.py) and runs
  them and DIR/det.onnx, DIR/rec.onnx on synthetic images drawn with
  tools/fixtures/check_models.py's helpers: every output of a proxy must equal
  the fixture's within 1e-4, and the proxy detector must find every face
  (insightface decode, 1 px tolerance) so the crops embed to the fixture
  identities.
* Sessions use ORT_ENABLE_ALL; the optimised graph is saved and must still
  hold every Conv / Gemm / MatMul of the proxy (nothing folded away), and the
  proxy must be much slower than the fixture.  Timings (2 intra-op threads)
  are printed.

Assert-based: any failure raises and the exit status is non-zero.
"""

import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
sys.path.insert(0, HERE)
import check_models as cm  # noqa: E402  (synthetic images, SCRFD decode, alignment)
import make_proxy_models as pm  # noqa: E402  (pm.fx = fixture make_models, time_model)

fx = pm.fx
HEAVY_OPS = ("Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul")


def session(data, tmp=None, name=None):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    if tmp:
        opts.optimized_model_filepath = os.path.join(tmp, name)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def count_heavy(model):
    return sum(n.op_type in HEAVY_OPS for n in model.graph.node)


def check_not_folded(path, data, tmp):
    """The ORT_ENABLE_ALL graph keeps every Conv/Gemm/MatMul of the proxy."""
    before = count_heavy(onnx.load_from_string(data))
    after = count_heavy(onnx.load(os.path.join(tmp, os.path.basename(path)), load_external_data=False))
    print(f"  {os.path.basename(path)}: {before} Conv/Gemm/MatMul nodes, {after} after ORT_ENABLE_ALL")
    assert after >= before, (path, before, after)


def det_blob(img):
    return np.ascontiguousarray(((img.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None])


def main(argv):
    if len(argv) != 2:
        print("usage: check_proxy_models.py DIR", file=sys.stderr)
        return 2
    fix_det = fx.build_detector().SerializeToString()
    fix_rec = fx.build_recogniser(np.random.default_rng(fx.SEED)).SerializeToString()
    paths = {k: os.path.join(argv[1], k + ".onnx") for k in ("det", "rec")}
    data = {}
    for k, p in paths.items():
        with open(p, "rb") as fh:
            data[k] = fh.read()
    print(f"onnxruntime {ort.__version__}; structure after optimisation:")
    with tempfile.TemporaryDirectory() as tmp:
        det = session(data["det"], tmp, "det.onnx")
        rec = session(data["rec"], tmp, "rec.onnx")
        for k in ("det", "rec"):
            check_not_folded(paths[k], data[k], tmp)
    fdet, frec = session(fix_det), session(fix_rec)
    assert [o.name for o in det.get_outputs()] == [o.name for o in fdet.get_outputs()]
    assert [o.name for o in rec.get_outputs()] == [o.name for o in frec.get_outputs()]

    # 1. Detector: identical raw outputs, and the faces are found.
    rng = np.random.default_rng(11)
    samples, max_err, n_faces = [], 0.0, 0
    stats = {"faces": 0, "sizes": set(), "box_err": [], "kps_err": []}
    for h, w in ((640, 640), (480, 640), (640, 640)):
        faces = cm.place_faces(h, w, [24, 40, 64, 100, 150, 200], rng, cm.MIN_GAP)
        ids = rng.integers(1, 32, len(faces))
        img, truth = cm.make_image(h, w, faces, rng, ids)
        outs = det.run(None, {"input.1": det_blob(img)})
        fouts = fdet.run(None, {"input.1": det_blob(img)})
        for a, b in zip(outs, fouts):
            assert a.shape == b.shape, (a.shape, b.shape)
            max_err = max(max_err, float(np.abs(a - b).max()))
        dets, kpss = cm.scrfd_detect(det, img, 1.0)
        for ident, side, kps in cm.match(dets, kpss, truth, 1.0, (1.0, 1.0), img.shape,
                                         f"proxy {h}x{w}", stats):
            samples.append((int(ident), img, kps))
        n_faces += len(faces)
    print(f"det: 9 outputs on {n_faces} faces in 3 images: max |proxy - fixture| = {max_err:.1e}; "
          f"every face found once, no false positives")
    assert max_err <= 1e-4, max_err

    # 2. Recogniser: a batch of 32 aligned crops, identical embeddings.
    crops = [cm.warp_affine(img, cm.umeyama(kps, cm.TEMPLATE)) for _, img, kps in samples]
    batch = np.stack([crops[i % len(crops)] for i in range(32)])
    batch = np.ascontiguousarray(((batch.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))
    (emb,), (femb,) = rec.run(None, {"input.1": batch}), frec.run(None, {"input.1": batch})
    rec_err = float(np.abs(emb - femb).max())
    ids = np.array([samples[i % len(samples)][0] for i in range(32)])
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = e @ e.T
    same = ids[:, None] == ids[None, :]
    print(f"rec: batch 32: max |proxy - fixture| = {rec_err:.1e}; same-identity cosine min "
          f"{cos[same].min():.4f}, different |cosine| max {np.abs(cos[~same]).max():.4f}")
    assert rec_err <= 1e-4, rec_err
    assert cos[same].min() >= 0.99 and np.abs(cos[~same]).max() <= 0.2

    # 3. Timings: ORT_ENABLE_ALL, 2 intra-op threads, median of single runs.
    img = {"input.1": det_blob(cm.background(640, 640, rng))}
    cases = [("det 640x640", "det", fix_det, img, 5)]
    for n in (1, 32):
        cases.append((f"rec batch {n}", "rec", fix_rec, {"input.1": batch[:n]}, 5 if n == 1 else 3))
    for label, k, fdata, feed, runs in cases:
        tp = pm.time_model(data[k], feed, runs)
        tf = pm.time_model(fdata, feed, runs)
        print(f"{label:13s} proxy {tp * 1e3:8.1f} ms   fixture {tf * 1e3:6.1f} ms   ({tp / tf:.0f}x)")
        assert tp > 5 * tf, f"{label}: proxy not slower than the fixture; heavy branch optimised away?"
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
