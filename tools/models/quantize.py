#!/usr/bin/env python3
"""Make the INT8 variant of a FacePass model pack: the opt-in fast tier
(issue 16, point 2; docs/benchmarks.md, "The INT8 tier").

Usage:
  python tools/models/quantize.py SRC_PACK OUT_PACK --photos DIR [options]

  SRC_PACK   a pack directory (manifest.toml, det and rec ONNX files), e.g.
             .facepass/models/real
  OUT_PACK   where the variant is written (created; replaced when it exists)
  --photos   calibration photos (JPEG/PNG, searched recursively): the
             detector is calibrated on them, the recogniser on the faces the
             full-precision detector finds in them
  --only-prefix P   quantise only the nodes whose name starts with P (the
             benchmark proxies: their "heavy" branch, the real architecture,
             is quantised; the fixture graph that finds the synthetic faces
             stays exact)
  --max-faces N     at most N faces for the recogniser's calibration (200)
  --method M        minmax | percentile | entropy (minmax)
  --int8-depthwise  quantise depthwise convolutions too
  --reduce-range    7-bit weights, for CPUs without VNNI (AVX2 only)

Both models are quantised statically with onnxruntime's own tools
(onnxruntime.quantization.quantize_static), after its pre-processing
(shape inference and graph optimisation, quant_pre_process): QDQ format,
weights INT8 per output channel (symmetric), activations UINT8 (asymmetric),
the U8S8 combination x86's VNNI/AMX instructions run fastest. The first
convolution (it sees raw pixels) and the layers that make the outputs (the
detector's score, box and landmark heads, the recogniser's embedding layer)
stay in full precision: they cost little and carry most of the error. So do
depthwise convolutions (MobileFaceNet's), unless --int8-depthwise.

The variant is a pack of its own: same name, version "<version>-int8" (so
its embeddings are never mixed with the full-precision pack's: the model id
differs and search keeps them apart), same licence and thresholds, and a
[quantised] table saying what it was made from and how. Point the services'
pack setting at OUT_PACK to use it (README.md, "Model packs").

Needs onnxruntime, onnx, numpy and OpenCV: the benchmark venv (.venv-parity,
`bash tools/parity/run.sh --venv-only`) has them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

# ArcFace's 5-point template for 112x112 crops (insightface face_align).
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
STRIDES = (8, 16, 32)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def session(path_or_bytes, threads=2):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(path_or_bytes, opts, providers=["CPUExecutionProvider"])


def letterbox(img_rgb, side):
    """insightface's SCRFD input: fit into side x side, top-left on zeros."""
    h, w = img_rgb.shape[:2]
    scale = side / max(h, w)
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:nh, :nw] = cv2.resize(img_rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, nh / h


def det_blob(canvas_rgb):
    return ((canvas_rgb.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]


def detect(sess, canvas_rgb, det_scale, threshold):
    """SCRFD decode as insightface (no NMS needed for calibration: the
    strongest non-overlapping faces are taken greedily)."""
    blob = det_blob(canvas_rgb)
    outs = sess.run(None, {sess.get_inputs()[0].name: blob})
    h, w = blob.shape[2:]
    found = []
    for i, s in enumerate(STRIDES):
        scores = outs[i].ravel()
        boxes, kps = outs[i + 3].reshape(-1, 4) * s, outs[i + 6].reshape(-1, 10) * s
        ys, xs = np.mgrid[:h // s, :w // s]
        centres = np.repeat(np.stack([xs.ravel(), ys.ravel()], 1) * s, 2, axis=0).astype(np.float32)
        for j in np.where(scores >= threshold)[0]:
            c = centres[j]
            box = np.array([c[0] - boxes[j, 0], c[1] - boxes[j, 1], c[0] + boxes[j, 2], c[1] + boxes[j, 3]])
            pts = c + kps[j].reshape(5, 2)
            found.append((float(scores[j]), box / det_scale, pts / det_scale))
    found.sort(key=lambda f: -f[0])
    kept = []
    for f in found:
        if all(iou(f[1], k[1]) <= 0.4 for k in kept):
            kept.append(f)
    return kept


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def align(img_rgb, pts):
    """The 112x112 ArcFace crop (similarity transform, as insightface's norm_crop)."""
    m, _ = cv2.estimateAffinePartial2D(pts.astype(np.float32), TEMPLATE, method=cv2.LMEDS)
    return cv2.warpAffine(img_rgb, m, (112, 112), borderValue=0.0)


def photos_in(folder):
    """The photos under `folder`, each content once (a labelled set holds copies)."""
    seen, photos = set(), []
    for p in sorted(Path(folder).rglob("*")):
        if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file():
            digest = hashlib.sha256(p.read_bytes()).digest()
            if digest not in seen:
                seen.add(digest)
                photos.append(p)
    return photos


def read_rgb(path, longest=2560):
    """The photo as RGB, at most `longest` px on its longer side (calibration
    needs value ranges, not 24 MP)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"quantize: cannot read {path}")
    h, w = img.shape[:2]
    if max(h, w) > longest:
        s = longest / max(h, w)
        img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def calibration_inputs(manifest, src, photos, max_faces):
    """Detector inputs (each photo letterboxed, mirrored, and a 2x zoomed
    tile, as the small-face pass sees it) and recogniser inputs (the faces the
    full-precision detector finds, and their mirror images)."""
    det_side = manifest["detector"]["input_size"]
    threshold = manifest["detector"]["score_threshold"]
    mean, std = manifest["recogniser"]["input_mean"], manifest["recogniser"]["input_std"]
    det = session(str(src / manifest["detector"]["file"]))
    det_inputs, crops = [], []
    for path in photos:
        img = read_rgb(path)
        canvas, scale = letterbox(img, det_side)
        det_inputs += [det_blob(canvas), det_blob(canvas[:, ::-1].copy())]
        h, w = img.shape[:2]
        tile = img[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2]
        det_inputs.append(det_blob(letterbox(tile, det_side)[0]))
        for _, _, pts in detect(det, canvas, scale, threshold):
            crop = align(img, pts)
            crops += [crop, crop[:, ::-1].copy()]
    if not det_inputs:
        raise SystemExit("quantize: no calibration photos")
    if not crops:
        raise SystemExit("quantize: the detector found no face in the calibration photos")
    rng = np.random.default_rng(0)
    if len(crops) > max_faces:
        crops = [crops[i] for i in sorted(rng.choice(len(crops), max_faces, replace=False))]
    rec_inputs = [((c.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None] for c in crops]
    return det_inputs, rec_inputs


class Reader(CalibrationDataReader):
    def __init__(self, name, blobs):
        self.name, self.blobs, self.i = name, blobs, 0

    def get_next(self):
        if self.i >= len(self.blobs):
            return None
        self.i += 1
        return {self.name: self.blobs[self.i - 1]}

    def rewind(self):
        self.i = 0


HEAVY = ("Conv", "Gemm", "MatMul")


def output_layers(model, depth=1):
    """The Conv/Gemm/MatMul nodes within `depth` such layers of the graph's
    outputs (walking back through the element-wise and shape nodes between
    them), and the nodes after the last of them (the outputs stay in full
    precision too). depth 1: the layers that make the outputs (the detector's score,
    box and landmark convolutions, the recogniser's embedding layer); 3: the
    detector's whole heads as well."""
    producer = {o: n for n in model.graph.node for o in n.output}
    found, best = set(), {}
    stack = [(o.name, 0) for o in model.graph.output]
    while stack:
        name, hops = stack.pop()
        node = producer.get(name)
        if node is None:
            continue
        if node.op_type in HEAVY:
            hops += 1
            if hops > depth:
                continue
            found.add(node.name)
        elif hops == 0:
            found.add(node.name)  # between the output layers and the outputs
        if best.get(id(node), depth + 1) <= hops:
            continue
        best[id(node)] = hops
        stack.extend((i, hops) for i in node.input)
    return found


def depthwise(model):
    """Depthwise convolutions (group = channels): memory-bound, little to gain
    in INT8, and a large share of a MobileFaceNet's error."""
    inits = {i.name: i for i in model.graph.initializer}
    found = set()
    for n in model.graph.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        w = inits.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        if group > 1 and w is not None and w.dims[1] == 1:
            found.add(n.name)
    return found


def kept_in_full_precision(model, only_prefix, keep_depthwise=False):
    """Node names left in full precision: the first Conv (raw pixels in),
    the layers that make the outputs, and with `only_prefix` every node
    outside it."""
    nodes = list(model.graph.node)
    heavy = [n for n in nodes if n.op_type in HEAVY
             and (not only_prefix or n.name.startswith(only_prefix))]
    keep = set()
    if heavy:
        keep.add(heavy[0].name)
        keep.update(output_layers(model))
    if keep_depthwise:
        keep.update(depthwise(model))
    if only_prefix:
        keep.update(n.name for n in nodes if not n.name.startswith(only_prefix))
    return sorted(k for k in keep if k)


def quantise(src_file, out_file, blobs, only_prefix, method, keep_depthwise=False, reduce_range=False):
    src_file, out_file = Path(src_file).resolve(), Path(out_file).resolve()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # onnxruntime's shape inference leaves external-data files in the
        # working directory when it gives up: keep them in the temporary one.
        os.chdir(tmp)
        try:
            return _quantise(tmp, src_file, out_file, blobs, only_prefix, method, keep_depthwise,
                             reduce_range)
        finally:
            os.chdir(cwd)


def _quantise(tmp, src_file, out_file, blobs, only_prefix, method, keep_depthwise, reduce_range):
    pre = os.path.join(tmp, "pre.onnx")
    src = onnx.load(str(src_file))
    opset = next((o.version for o in src.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        # Per-channel DequantizeLinear (its `axis`) needs opset 13.
        src = onnx.version_converter.convert_version(src, 13)
        src_file = os.path.join(tmp, "opset13.onnx")
        onnx.save(src, src_file)
    del src
    try:
        quant_pre_process(str(src_file), pre, skip_symbolic_shape=False)
    except Exception as e:  # noqa: BLE001 (onnxruntime raises a bare Exception)
        # Dynamic shapes the symbolic inference cannot follow (the
        # benchmark proxies): ONNX's own shape inference is enough.
        print(f"[quantize] {Path(src_file).name}: {e}; ONNX shape inference only", file=sys.stderr)
        quant_pre_process(str(src_file), pre, skip_symbolic_shape=True)
    model = onnx.load(pre)
    name = model.graph.input[0].name
    exclude = kept_in_full_precision(model, only_prefix, keep_depthwise)
    quantize_static(
        pre, str(out_file), Reader(name, blobs),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method={"minmax": CalibrationMethod.MinMax,
                          "percentile": CalibrationMethod.Percentile,
                          "entropy": CalibrationMethod.Entropy}[method],
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False,
                       "CalibMovingAverage": False},
    )
    return len(exclude)


def embeddings(manifest, folder, photos):
    """Every face the pack finds in the photos: (photo index, box, unit embedding)."""
    det = session(str(folder / manifest["detector"]["file"]))
    rec = session(str(folder / manifest["recogniser"]["file"]))
    side, threshold = manifest["detector"]["input_size"], manifest["detector"]["score_threshold"]
    mean, std = manifest["recogniser"]["input_mean"], manifest["recogniser"]["input_std"]
    faces = []
    for i, path in enumerate(photos):
        img = read_rgb(path)
        canvas, scale = letterbox(img, side)
        for _, box, pts in detect(det, canvas, scale, threshold):
            blob = ((align(img, pts).astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
            (e,) = rec.run(None, {rec.get_inputs()[0].name: np.ascontiguousarray(blob)})
            e = e.ravel()
            faces.append((i, box, e / np.linalg.norm(e)))
    return faces


def compare(manifest, src, variant_manifest, out, photos):
    """How close the variant comes to the full-precision pack on the
    calibration photos: faces found by each, and the cosine of each matched
    face's embedding to its full-precision one (the services' own
    measurement on real faces is facepass-bench-real --variant)."""
    ref = embeddings(manifest, src, photos)
    var = embeddings(variant_manifest, out, photos)
    cosines, lost = [], 0
    for i, box, e in ref:
        best = max((v for v in var if v[0] == i), key=lambda v: iou(box, v[1]), default=None)
        if best is None or iou(box, best[1]) < 0.5:
            lost += 1
            continue
        cosines.append(float(e @ best[2]))
    c = np.array(cosines) if cosines else np.array([float("nan")])
    print(f"[quantize] on the calibration photos: {len(ref)} faces in full precision, {len(var)} "
          f"in int8 ({lost} lost); embedding cosine to full precision: min {c.min():.4f}, "
          f"median {np.median(c):.4f}", file=sys.stderr)
    return c, lost


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    # A basic string: backslash, quote and every control character but tab
    # escaped (a licence text may hold form feeds or carriage returns).
    out = []
    for ch in str(v):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_text(doc, prefix=""):
    """A TOML document from nested dicts of scalars (what a manifest holds)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += ["", f"[{prefix}{k}]", toml_text(v, f"{prefix}{k}.")]
    return "\n".join(line for line in lines if line is not None).replace("\n\n\n", "\n\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--photos", required=True, type=Path)
    ap.add_argument("--only-prefix", default="")
    ap.add_argument("--max-faces", type=int, default=200)
    ap.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="minmax")
    ap.add_argument("--int8-depthwise", action="store_true",
                    help="quantise the depthwise convolutions too (by default they stay in full "
                         "precision: memory-bound, little faster in INT8, a large share of the error)")
    ap.add_argument("--reduce-range", action="store_true",
                    help="7-bit weights: for CPUs without VNNI (AVX2 only), where ONNX Runtime's "
                         "U8S8 kernels can saturate; a little less accurate on CPUs with it")
    args = ap.parse_args(argv)

    with open(args.src / "manifest.toml", "rb") as fh:
        manifest = tomllib.load(fh)
    if "quantised" in manifest:
        raise SystemExit(f"quantize: {args.src} is already a quantised variant")
    photos = photos_in(args.photos)
    if not photos:
        raise SystemExit(f"quantize: no JPEG or PNG photos under {args.photos}")
    started = time.monotonic()
    print(f"[quantize] {manifest['name']}@{manifest['version']}: calibrating on {len(photos)} photos",
          file=sys.stderr)
    det_inputs, rec_inputs = calibration_inputs(manifest, args.src, photos, args.max_faces)
    print(f"[quantize] {len(det_inputs)} detector inputs, {len(rec_inputs)} faces", file=sys.stderr)

    tmp_out = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(tmp_out, ignore_errors=True)
    tmp_out.mkdir(parents=True)
    det_file = Path(manifest["detector"]["file"]).stem + ".int8.onnx"
    rec_file = Path(manifest["recogniser"]["file"]).stem + ".int8.onnx"
    kept = {}
    for part, file, blobs in (("detector", det_file, det_inputs),
                              ("recogniser", rec_file, rec_inputs)):
        t0 = time.monotonic()
        kept[part] = quantise(args.src / manifest[part]["file"], tmp_out / file, blobs,
                              args.only_prefix, args.method,
                              keep_depthwise=not args.int8_depthwise,
                              reduce_range=args.reduce_range)
        # ONNX Runtime must load it (a quantiser bug fails here, not in a service).
        session(str(tmp_out / file), threads=1)
        print(f"[quantize] {part}: {file}, {(tmp_out / file).stat().st_size / 1e6:.1f} MB "
              f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)

    variant = dict(manifest)
    variant.pop("download", None)
    variant["version"] = f"{manifest['version']}-int8"
    for part, file in (("detector", det_file), ("recogniser", rec_file)):
        entry = dict(manifest[part])
        entry["file"] = file
        entry["sha256"] = sha256(tmp_out / file)
        entry["bytes"] = (tmp_out / file).stat().st_size
        entry["source"] = f"{manifest[part]['file']} quantised by tools/models/quantize.py"
        variant[part] = entry
    variant["quantised"] = {
        "from": f"{manifest['name']}@{manifest['version']}",
        "precision": "int8",
        "method": (f"onnxruntime {ort.__version__} quantize_static, QDQ, weights int8 per channel, "
                   f"activations uint8{', reduced range' if args.reduce_range else ''}, {args.method} calibration; {kept['detector']} detector and "
                   f"{kept['recogniser']} recogniser layers (the first and the output ones) in full precision"),
        "calibration": f"{len(photos)} photos ({args.photos.name}), {len(det_inputs)} detector inputs, "
                       f"{len(rec_inputs)} faces",
    }
    header = (f"# INT8 variant of {manifest['name']}@{manifest['version']}, written by "
              "tools/models/quantize.py.\n# Same licence as the pack it was made from.\n")
    (tmp_out / "manifest.toml").write_text(header + toml_text(variant) + "\n", encoding="utf-8")
    for extra in ("LICENCES.txt", "licences", "LICENSE"):
        p = args.src / extra
        if p.is_dir():
            shutil.copytree(p, tmp_out / extra)
        elif p.is_file():
            shutil.copy2(p, tmp_out / extra)
    with open(tmp_out / "manifest.toml", "rb") as fh:
        compare(manifest, args.src, tomllib.load(fh), tmp_out, photos)
    shutil.rmtree(args.out, ignore_errors=True)
    tmp_out.rename(args.out)
    print(f"[quantize] {args.out}: {variant['name']}@{variant['version']} "
          f"({time.monotonic() - started:.0f} s). Licence: {manifest['licence']['name']}"
          f"{'' if manifest['licence'].get('commercial_use') else ' (NOT for commercial use)'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
