#!/usr/bin/env python3
"""Run insightface 0.7.3 on every image of a directory: the parity reference.

Usage:  python tools/parity/reference.py MODEL_DIR IMAGE_DIR OUT_JSON [--check-scrfd]

MODEL_DIR holds det.onnx (SCRFD signature, 9 outputs) and rec.onnx (ArcFace
signature).  Exactly the calls insightface's FaceAnalysis makes, minus the
model-pack directory scan:

    det = insightface.model_zoo.get_model(det.onnx)        # 9 outputs -> RetinaFace class,
    det.prepare(ctx_id=-1, input_size=(640, 640),          # whose detect() is SCRFD's
                det_thresh=0.5)
    rec = insightface.model_zoo.get_model(rec.onnx)         # ArcFaceONNX
    rec.prepare(ctx_id=-1)
    img = cv2.imread(path)                                  # BGR uint8
    bboxes, kpss = det.detect(img, max_num=0, metric='default')
    face = Face(bbox=bboxes[i, :4], kps=kpss[i], det_score=bboxes[i, 4])
    rec.get(img, face)     # norm_crop(img, kps, 112) + get_feat -> face.embedding
    face.normed_embedding  # embedding / ||embedding||

The aligned crop written out is face_align.norm_crop(img, landmark=face.kps,
image_size=112) -- the same call ArcFaceONNX.get makes -- converted BGR -> RGB,
as base64 of the raw 112*112*3 bytes (row-major, RGB interleaved).  The script
asserts that get_feat(crop) reproduces face.embedding bit for bit.

With --check-scrfd it also runs insightface.model_zoo.scrfd.SCRFD.detect on
every image and asserts the same detections (the two classes share the decode).

Output (compare.py reads it; the Rust side writes the same schema; extra keys
are informational):
  {"tool": "insightface-0.7.3", "versions": {...}, "detector_class": ...,
   "images": [{"name", "width", "height", "letterbox": {...},
               "faces": [{"bbox": [x1, y1, x2, y2], "score", "landmarks": [[x, y] x 5],
                          "crop_rgb_b64", "embedding": [512, L2-normalised],
                          "embedding_norm": raw L2 norm}]}]}
Faces sorted by score descending, then x1 ascending.  No timings in the JSON:
two runs on the same inputs and library versions give byte-identical files.
"""

import argparse
import base64
import contextlib
import io
import json
import os
import sys
import time
import warnings

import cv2
import numpy as np
import onnxruntime
import insightface
from insightface.app.common import Face
from insightface.model_zoo import model_zoo
from insightface.utils import face_align

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
DET_SIZE = (640, 640)
DET_THRESH = 0.5
PROVIDERS = ["CPUExecutionProvider"]

# scikit-image >= 0.26 deprecates SimilarityTransform.estimate, which
# insightface's face_align.estimate_norm calls; the result is unchanged.
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")


def pack_manifest(model_dir):
    """MODEL_DIR/manifest.toml as a dict, or None (a bare det.onnx + rec.onnx)."""
    path = os.path.join(model_dir, "manifest.toml")
    if not os.path.isfile(path):
        return None
    import tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_models(model_dir):
    manifest = pack_manifest(model_dir)
    det_file, rec_file = "det.onnx", "rec.onnx"
    if manifest is not None:
        det_file, rec_file = manifest["detector"]["file"], manifest["recogniser"]["file"]
    # model_zoo prints "Applied providers: ..." on stdout; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        det = model_zoo.get_model(os.path.join(model_dir, det_file), providers=PROVIDERS)
        rec = model_zoo.get_model(os.path.join(model_dir, rec_file), providers=PROVIDERS)
        assert det is not None and det.taskname == "detection", det
        assert rec is not None and rec.taskname == "recognition", rec
        if len(det.session.get_outputs()[0].shape) == 3:
            # Outputs with a batch dimension ([1, N, k], as the scrfd package's
            # SCRFD-2.5G has): model_zoo's RetinaFace class cannot decode them,
            # insightface's SCRFD class can (its `batched` path; the two
            # classes share the decode otherwise, see --check-scrfd).
            from insightface.model_zoo.scrfd import SCRFD
            path = os.path.join(model_dir, det_file)
            det = SCRFD(model_file=path,
                        session=onnxruntime.InferenceSession(path, providers=PROVIDERS))
            assert det.batched
        # A detector with a fixed input size keeps it (insightface prints a
        # warning and ignores input_size); only 640x640 is supported here.
        det.prepare(ctx_id=-1, input_size=DET_SIZE, det_thresh=DET_THRESH)
        rec.prepare(ctx_id=-1)
    assert det.input_size in (None, DET_SIZE), f"detector input {det.input_size}"
    if manifest is not None:
        # A pack states its recogniser's normalisation (insightface guesses it
        # from the graph's first node names); use the pack's, as FacePass does.
        rec_spec = manifest["recogniser"]
        rec.input_mean = float(rec_spec.get("input_mean", 127.5))
        rec.input_std = float(rec_spec.get("input_std", 127.5))
    return det, rec


def letterbox(img, input_size=DET_SIZE):
    """The geometry insightface's detect() uses (informational only)."""
    im_ratio = float(img.shape[0]) / img.shape[1]
    model_ratio = float(input_size[1]) / input_size[0]
    if im_ratio > model_ratio:
        new_h = input_size[1]
        new_w = int(new_h / im_ratio)
    else:
        new_w = input_size[0]
        new_h = int(new_w * im_ratio)
    return {"det_size": list(input_size), "new_width": new_w, "new_height": new_h,
            "det_scale": float(new_h) / img.shape[0]}


def run_image(det, rec, path, scrfd=None):
    img = cv2.imread(path)  # BGR, IMREAD_COLOR (applies EXIF orientation, drops alpha)
    if img is None:
        raise RuntimeError(f"cv2.imread cannot read {path}")
    t0 = time.perf_counter()
    bboxes, kpss = det.detect(img, max_num=0, metric="default")
    faces = []
    for i in range(bboxes.shape[0]):
        face = Face(bbox=bboxes[i, 0:4], kps=kpss[i], det_score=bboxes[i, 4])
        rec.get(img, face)  # what FaceAnalysis.get does for the recognition model
        crop = face_align.norm_crop(img, landmark=face.kps, image_size=rec.input_size[0])
        feat = rec.get_feat(crop).flatten()
        assert np.array_equal(feat, face.embedding), "get_feat(norm_crop) != rec.get"
        normed = face.normed_embedding
        faces.append({
            "bbox": [float(v) for v in face.bbox],
            "score": float(face.det_score),
            "landmarks": [[float(x), float(y)] for x, y in face.kps],
            "crop_rgb_b64": base64.b64encode(
                np.ascontiguousarray(crop[..., ::-1]).tobytes()).decode("ascii"),
            "embedding": [float(v) for v in normed],
            "embedding_norm": float(face.embedding_norm),
        })
    seconds = time.perf_counter() - t0
    if scrfd is not None:
        sb, sk = scrfd.detect(img, max_num=0, metric="default")
        assert np.array_equal(sb, bboxes) and np.array_equal(sk, kpss), f"SCRFD != {type(det)} on {path}"
    faces.sort(key=lambda f: (-f["score"], f["bbox"][0]))
    return {"name": os.path.basename(path), "width": int(img.shape[1]), "height": int(img.shape[0]),
            "letterbox": letterbox(img), "faces": faces}, seconds


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("image_dir")
    ap.add_argument("out_json")
    ap.add_argument("--check-scrfd", action="store_true",
                    help="also run the SCRFD class and assert identical detections")
    args = ap.parse_args(argv[1:])

    det, rec = load_models(args.model_dir)
    scrfd = None
    if args.check_scrfd:
        from insightface.model_zoo.scrfd import SCRFD
        scrfd = SCRFD(model_file=os.path.join(args.model_dir, "det.onnx"),
                      session=onnxruntime.InferenceSession(
                          os.path.join(args.model_dir, "det.onnx"), providers=PROVIDERS))
        scrfd.prepare(ctx_id=-1, input_size=DET_SIZE, det_thresh=DET_THRESH)

    names = sorted(n for n in os.listdir(args.image_dir) if n.lower().endswith(IMAGE_EXTS))
    if not names:
        print(f"no images in {args.image_dir}", file=sys.stderr)
        return 2
    import skimage
    out = {
        "tool": f"insightface-{insightface.__version__}",
        "versions": {"insightface": insightface.__version__, "onnxruntime": onnxruntime.__version__,
                     "opencv": cv2.__version__, "numpy": np.__version__,
                     "scikit-image": skimage.__version__},
        "detector_class": type(det).__name__,
        "recogniser_class": type(rec).__name__,
        "recogniser_input": {"mean": rec.input_mean, "std": rec.input_std},
        "det_size": list(DET_SIZE), "det_thresh": DET_THRESH,
        "images": [],
    }
    t0 = time.perf_counter()
    for name in names:
        rec_img, seconds = run_image(det, rec, os.path.join(args.image_dir, name), scrfd)
        out["images"].append(rec_img)
        print(f"{name}: {rec_img['width']}x{rec_img['height']}, {len(rec_img['faces'])} faces, "
              f"{seconds:.3f} s (detect + align + embed)")
    total = time.perf_counter() - t0
    with open(args.out_json, "w") as f:
        json.dump(out, f)
    n_faces = sum(len(i["faces"]) for i in out["images"])
    print(f"{out['tool']} ({out['detector_class']} + {out['recogniser_class']}, onnxruntime "
          f"{onnxruntime.__version__}, OpenCV {cv2.__version__}): {len(names)} images, "
          f"{n_faces} faces, {total:.1f} s -> {args.out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
