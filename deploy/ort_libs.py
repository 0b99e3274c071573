"""Unpacks ONNX Runtime's shared libraries from a PyPI wheel (onnxruntime or
onnxruntime-gpu) for the FacePass images (deploy/Dockerfile, stages ort and ort-gpu).

    python ort_libs.py WHEEL_DIR OUT_DIR VERSION [--cuda]

Keeps onnxruntime/capi/libonnxruntime*.so* except the TensorRT provider (TensorRT is
not in the images), checks that libonnxruntime.so.VERSION (and with --cuda the CUDA
and shared providers) came out, and links libonnxruntime.so and .so.1 to it, so that
ORT_DYLIB_PATH=OUT_DIR/libonnxruntime.so does not name the version. Python's standard
library only: it runs in python:3.11-slim.
"""

import glob
import os
import sys
import zipfile

PREFIX = "onnxruntime/capi/libonnxruntime"


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    cuda = "--cuda" in argv
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    wheel_dir, out_dir, version = args
    wheels = sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))
    if len(wheels) != 1:
        print(f"ort_libs: expected one wheel in {wheel_dir}, found {wheels}", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = [
            n for n in wheel.namelist() if n.startswith(PREFIX) and "tensorrt" not in n
        ]
        for name in names:
            target = os.path.join(out_dir, os.path.basename(name))
            with open(target, "wb") as out:
                out.write(wheel.read(name))
            os.chmod(target, 0o644)
            print(f"ort_libs: {name} -> {target}")
    need = [f"libonnxruntime.so.{version}"]
    if cuda:
        need += ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"]
    missing = [n for n in need if not os.path.isfile(os.path.join(out_dir, n))]
    if missing:
        print(f"ort_libs: not in {wheels[0]}: {', '.join(missing)}", file=sys.stderr)
        return 1
    for link in ("libonnxruntime.so.1", "libonnxruntime.so"):
        path = os.path.join(out_dir, link)
        if os.path.lexists(path):
            os.remove(path)
        os.symlink(f"libonnxruntime.so.{version}", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
