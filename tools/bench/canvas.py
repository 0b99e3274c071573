#!/usr/bin/env python3
"""The detector's first pass on insightface's 640x640 square against the fitted canvas
(640x480 for a 3:2 photo, docs/benchmarks.md "First pass canvas"), raw ONNX Runtime,
2 threads, random input (speed does not depend on pixel values):

    .venv-parity/bin/python tools/bench/canvas.py .facepass/models/proxy/det.onnx
"""
import time, numpy as np, onnxruntime as ort, sys
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
def bench(shapes, n=12):
    xs = [np.random.rand(1, 3, *sh).astype(np.float32) for sh in shapes]
    for x in xs: s.run(None, {name: x})
    t = time.perf_counter()
    for i in range(n): s.run(None, {name: xs[i % len(xs)]})
    return (time.perf_counter() - t) / n * 1000
sq1 = bench([(640, 640)])
print(f"square 640x640: {sq1:.1f} ms")
alt = bench([(480, 640), (640, 480)])
print(f"fitted, landscape and portrait alternating (480x640, 640x480): {alt:.1f} ms")
land = bench([(480, 640)])
print(f"fitted, landscape only: {land:.1f} ms")
sq2 = bench([(640, 640)])
print(f"square 640x640 again: {sq2:.1f} ms")
print(f"fitted / square: {alt / ((sq1 + sq2) / 2):.2f}")
