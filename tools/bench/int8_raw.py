#!/usr/bin/env python3
"""Raw ONNX Runtime time of a pack against its INT8 variant (no decoding, no
alignment): the detector at 640x480 (the fitted first pass of a 4:3 photo)
and the recogniser on batches of 8 faces, 2 threads, interleaved runs.

  python tools/bench/int8_raw.py FP32_PACK INT8_PACK [--runs N]
"""
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main():
    fp32, int8 = Path(sys.argv[1]), Path(sys.argv[2])
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 10
    rng = np.random.default_rng(0)
    packs = {}
    for label, folder in (("fp32", fp32), ("int8", int8)):
        with open(folder / "manifest.toml", "rb") as fh:
            m = tomllib.load(fh)
        packs[label] = (session(folder / m["detector"]["file"]), session(folder / m["recogniser"]["file"]), m)
    m = packs["fp32"][2]
    side = m["detector"]["input_size"]
    det_in = rng.uniform(-1, 1, (1, 3, side if m["detector"].get("fixed_input") else 480, side)).astype(np.float32)
    batch = m["recogniser"].get("batch") or 8
    rec_in = rng.uniform(-1, 1, (batch, 3, 112, 112)).astype(np.float32)
    times = {(k, part): [] for k in packs for part in ("det", "rec")}
    for _ in range(runs + 1):  # the first run warms up
        for k, (det, rec, _) in packs.items():
            for part, sess, x in (("det", det, det_in), ("rec", rec, rec_in)):
                t = time.perf_counter()
                sess.run(None, {sess.get_inputs()[0].name: x})
                times[(k, part)].append(time.perf_counter() - t)
    for part, what in (("det", f"detector {det_in.shape[3]}x{det_in.shape[2]}"), ("rec", f"recogniser, batch {batch}")):
        a, b = (float(np.median(times[(k, part)][1:])) * 1e3 for k in ("fp32", "int8"))
        print(f"{what:<28} fp32 {a:8.1f} ms   int8 {b:8.1f} ms   {a / b:5.2f}x")


if __name__ == "__main__":
    main()
