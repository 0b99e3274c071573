#!/usr/bin/env python3
"""Generate benchmark "proxy" models: det.onnx and rec.onnx that cost what
InsightFace buffalo_l's det_10g.onnx / w600k_r50.onnx cost, yet give exactly
the outputs of the fixture models (tools/fixtures/make_models.py), so a
benchmark still detects, aligns and retrieves the synthetic faces.

Usage:  python tools/bench/make_proxy_models.py OUT_DIR [--no-timing]

Keep OUT_DIR out of the repository tree (e.g. /tmp/proxy or the git-ignored
.facepass/models/proxy): rec.onnx is ~175 MB.

Each proxy = the fixture graph (imported from make_models, not copied) + a
"heavy" branch with the real architecture and random weights (fixed seed):

rec.onnx  insightface "iresnet50" as exported in w600k_r50.onnx: stem Conv3x3
          64 + PReLU; IBasicBlocks [3, 4, 14, 3] x widths 64/128/256/512, each
          BN -> Conv3x3 -> PReLU -> Conv3x3(stride) (+ Conv1x1(stride)
          shortcut in the first block of a stage); BN, Flatten, Gemm
          25088 -> 512, BatchNorm1d.  The BNs that follow a conv are folded
          into its bias, as in the exported model; dropout is absent.
det.onnx  SCRFD_10G_KPS (scrfd_10g_bnkps config): ResNetV1e backbone (deep
          stem 3x3 convs 28/28/56, stride 2; MaxPool 2; BasicBlocks [3, 4, 2, 3]
          x widths 56/88/88/224, AvgPool+Conv1x1 shortcuts), PAFPN (56 ch,
          strides 8/16/32), and per-stride heads (3 x Conv3x3 80 + ReLU, then
          Conv3x3 to 2 scores / 8 box / 20 kps channels), Sigmoid on the
          scores, Scale Mul on boxes, transposed/reshaped like the export to
          [h*w*2, 1 | 4 | 10].  H and W must be multiples of 32 (as for the
          fixture and insightface's 640x640).
          NB: SCRFD's "10 GF" is counted at VGA 640x480 (the SCRFD paper's
          convention); the same network costs ~13.3 G multiply-accumulates at
          640x640.  Both numbers are printed.

GFLOPs are counted the way the published figures are (6.3 G for iresnet50):
one multiply-accumulate of Conv/Gemm = 1 FLOP; element-wise ops are ignored.

Output combination, and why ONNX Runtime cannot optimise the heavy branch away
------------------------------------------------------------------------------
Each final output is   out = fixture_out + Relu(Neg(Abs(heavy_out)))
with heavy_out the proxy output of the same shape (e.g. the stride-8 score
tensor of the real head).  For every non-NaN value Relu(-|h|) is exactly 0
(also for +-inf), so out == fixture_out bit for bit (up to the sign of zero).
Yet the zero is data-dependent: constant folding only evaluates nodes whose
inputs are all initializers, and heavy_out depends on "input.1"; ORT has no
value-range reasoning that knows Relu(-|h|) == 0, so every conv stays.  (A
literal "heavy * 0" relies on ORT never learning "x * 0 -> 0", and even a
runtime zero times heavy gives NaN if heavy overflows; here a heavy inf is
harmless.)  The weights are He-scaled so heavy values stay finite and far from
denormal (denormals would slow the CPU, zeros from ReLU do not).
check_proxy_models.py verifies the equality and that the optimised session
still contains every Conv/Gemm.
"""

import hashlib
import os
import sys
import time

import numpy as np
from onnx import helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
import make_models as fx  # noqa: E402  (fixture graphs, GraphBuilder, _model)

PROXY_SEED = 20240612


class Net:
    """Adds layers to a fx.GraphBuilder, tracking per-sample shape and MACs."""

    def __init__(self, prefix, rng):
        self.g = fx.GraphBuilder(prefix)
        self.rng = rng
        self.macs = 0

    def randn(self, shape, std):
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def conv(self, x, shape, cout, k, stride=1, gain=1.0):
        """Conv k x k (pad k//2) with bias (= folded BN); returns (name, shape)."""
        cin, h, w = shape
        p = k // 2
        ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
        wt = self.randn((cout, cin, k, k), gain * np.sqrt(2.0 / (cin * k * k)))
        y = self.g.op("Conv", [x, self.g.const(wt, "w"), self.g.const(self.randn((cout,), 0.01), "b")],
                      "conv", kernel_shape=[k, k], strides=[stride, stride], pads=[p] * 4)
        self.macs += cout * cin * k * k * ho * wo
        return y, (cout, ho, wo)

    def relu(self, x):
        return self.g.op("Relu", [x])

    def prelu(self, x, c):
        return self.g.op("PRelu", [x, self.g.const(np.full((c, 1, 1), 0.25, np.float32), "slope")])

    def bn(self, x, c):
        """Inference BatchNormalization (not foldable into a following padded conv)."""
        g = self.g
        return g.op("BatchNormalization", [x, g.const(1 + self.randn((c,), 0.05), "gamma"),
                                           g.const(self.randn((c,), 0.05), "beta"),
                                           g.const(np.zeros(c, np.float32), "mean"),
                                           g.const(np.ones(c, np.float32), "var")], "bn", epsilon=1e-5)

    def reshape(self, x, shape):
        return self.g.op("Reshape", [x, self.g.const(shape, "shape", np.int64)])


# --------------------------------------------------------------------------
# rec: iresnet50
# --------------------------------------------------------------------------
def iresnet50(net, x):
    """Returns the [N, 512] feature tensor of insightface's iresnet50."""
    shape = (3, 112, 112)
    y, shape = net.conv(x, shape, 64, 3)
    y = net.prelu(y, 64)
    for planes, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for b in range(blocks):
            stride = 2 if b == 0 else 1
            t = net.bn(y, shape[0])
            t, s1 = net.conv(t, shape, planes, 3)
            t = net.prelu(t, planes)
            t, s2 = net.conv(t, s1, planes, 3, stride, gain=0.5)  # damp residual growth
            sc = net.conv(y, shape, planes, 1, stride)[0] if b == 0 else y
            y, shape = net.g.op("Add", [t, sc]), s2
    y = net.bn(y, 512)
    y = net.g.op("Flatten", [y], axis=1)
    n_in = int(np.prod(shape))  # 512 * 7 * 7
    y = net.g.op("Gemm", [y, net.g.const(net.randn((512, n_in), np.sqrt(1.0 / n_in)), "fc_w"),
                          net.g.const(net.randn((512,), 0.01), "fc_b")], "fc", transB=1)
    net.macs += n_in * 512
    return net.bn(y, 512)  # BatchNorm1d "features"


# --------------------------------------------------------------------------
# det: SCRFD_10G_KPS
# --------------------------------------------------------------------------
def scrfd_10g(net, x, hw=(640, 640)):
    """Returns {kind: [tensor per stride]} shaped like the export's outputs.
    hw is only the nominal size used for MAC counting (graph is dynamic)."""
    g = net.g
    shape = (3, *hw)
    # ResNetV1e deep stem, then MaxPool 2x2 (no_pool33).
    for c, s in ((28, 2), (28, 1), (56, 1)):
        x, shape = net.conv(x, shape, c, 3, s)
        x = net.relu(x)
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    shape = (shape[0], shape[1] // 2, shape[2] // 2)
    feats = []
    for planes, blocks, stride in ((56, 3, 1), (88, 4, 2), (88, 2, 2), (224, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            t, s1 = net.conv(x, shape, planes, 3, s)
            t, s2 = net.conv(net.relu(t), s1, planes, 3, gain=0.5)
            sc = x
            if s != 1 or shape[0] != planes:  # avg_down shortcut
                sc_shape = shape
                if s != 1:
                    sc = g.op("AveragePool", [x], kernel_shape=[s, s], strides=[s, s],
                              ceil_mode=1, count_include_pad=0)
                    sc_shape = (shape[0], shape[1] // s, shape[2] // s)
                sc = net.conv(sc, sc_shape, planes, 1)[0]
            x, shape = net.relu(g.op("Add", [t, sc])), s2
        feats.append((x, shape))
    # PAFPN over strides 8/16/32 (start_level 1), 56 channels, no activation.
    lat = [net.conv(f, fs, 56, 1) for f, fs in feats[1:]]
    up = g.const(np.array([1, 1, 2, 2], np.float32), "up")
    for i in (2, 1):  # top-down: nearest x2 upsample and add
        r = g.op("Resize", [lat[i][0], "", up], mode="nearest")
        lat[i - 1] = (g.op("Add", [lat[i - 1][0], r]), lat[i - 1][1])
    inter = [net.conv(t, s, 56, 3) for t, s in lat]
    for i in (0, 1):  # bottom-up
        d, _ = net.conv(inter[i][0], inter[i][1], 56, 3, 2)
        inter[i + 1] = (g.op("Add", [inter[i + 1][0], d]), inter[i + 1][1])
    outs = [inter[0]] + [net.conv(t, s, 56, 3) for t, s in inter[1:]]
    # Heads (separate weights per stride; BN folded into conv bias).
    res = {"score": [], "box": [], "kps": []}
    for t, s in outs:
        for _ in range(3):
            t, s = net.conv(t, s, 80, 3)
            t = net.relu(t)
        for kind, ch in (("score", 2), ("box", 8), ("kps", 20)):
            o = net.conv(t, s, ch, 3)[0]
            if kind == "score":
                o = g.op("Sigmoid", [o])
            elif kind == "box":
                o = g.op("Mul", [o, g.const(np.float32(1.0), "scale")])
            o = g.op("Transpose", [o], perm=[0, 2, 3, 1])
            res[kind].append(net.reshape(o, [-1, ch // 2]))
    return res


# --------------------------------------------------------------------------
def combine(fixture, net, heavy, graph_name):
    """Fixture graph with its outputs renamed, plus the heavy branch, plus
    out = fixture_out + Relu(Neg(Abs(heavy_out))) for each named output."""
    g = net.g
    nodes = list(fixture.graph.node)
    for node in nodes:
        for i, o in enumerate(node.output):
            if o in heavy:
                node.output[i] = "fixture_" + o
    for name, h in heavy.items():
        zero = g.op("Relu", [g.op("Neg", [g.op("Abs", [h])])], "runtime_zero")
        g.op("Add", ["fixture_" + name, zero], outputs=[name])
    graph = helper.make_graph(nodes + g.nodes, graph_name, list(fixture.graph.input),
                              list(fixture.graph.output),
                              initializer=list(fixture.graph.initializer) + g.inits)
    model = fx._model(graph)  # same opset / IR / checker as the fixtures
    model.producer_name = "facepass-proxy"
    return model


def build_rec():
    fixture = fx.build_recogniser(np.random.default_rng(fx.SEED))  # as make_models.main
    net = Net("proxy_rec_", np.random.default_rng(PROXY_SEED + 1))
    feat = iresnet50(net, "input.1")
    return combine(fixture, net, {fx.REC_OUTPUT_NAME: feat}, "facepass_proxy_iresnet50"), net.macs


def build_det():
    fixture = fx.build_detector()
    net = Net("proxy_det_", np.random.default_rng(PROXY_SEED))
    res = scrfd_10g(net, "input.1")
    heavy = {fx.DET_OUTPUT_NAMES[k][i]: res[k][i] for k in res for i in range(3)}
    return combine(fixture, net, heavy, "facepass_proxy_scrfd_10g"), net.macs


def time_model(data, feed, runs=5, threads=2):
    """Median seconds of single inferences, ORT_ENABLE_ALL, intra_op threads."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    sess.run(None, feed)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print("usage: make_proxy_models.py OUT_DIR [--no-timing]", file=sys.stderr)
        return 2
    out_dir = args[0]
    os.makedirs(out_dir, exist_ok=True)
    blobs = {}
    for fname, build in (("det.onnx", build_det), ("rec.onnx", build_rec)):
        model, macs = build()
        data = model.SerializeToString(deterministic=True)
        path = os.path.join(out_dir, fname)
        with open(path, "wb") as fh:
            fh.write(data)
        blobs[fname] = data
        print(f"{hashlib.sha256(data).hexdigest()}  {path}  ({len(data)} bytes)")
        if fname == "det.onnx":
            print(f"  heavy branch: {macs / 1e9:.2f} GFLOPs (MACs) at 640x640, "
                  f"{macs * 0.75 / 1e9:.2f} at 640x480 (SCRFD's VGA convention)")
        else:
            print(f"  heavy branch: {macs / 1e9:.3f} GFLOPs (MACs) per 112x112 face")
    fx.write_manifest(out_dir, "proxy", "benchmark proxy models (random weights, buffalo_l architectures)")
    if "--no-timing" in argv:
        return 0
    rng = np.random.default_rng(0)
    img = rng.uniform(-1, 1, (1, 3, 640, 640)).astype(np.float32)
    print(f"det 640x640, 2 threads: {time_model(blobs['det.onnx'], {'input.1': img}) * 1e3:.0f} ms")
    for n in (1, 32):
        faces = rng.uniform(-1, 1, (n, 3, 112, 112)).astype(np.float32)
        t = time_model(blobs["rec.onnx"], {"input.1": faces}, runs=5 if n == 1 else 3)
        print(f"rec batch {n}, 2 threads: {t * 1e3:.0f} ms ({t * 1e3 / n:.1f} ms/face)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
