"""Unit tests of tools/models/quantize.py's choice of what stays in full
precision, and of its manifest writer (the whole tool runs in scripts/test.sh
on the real pack, and real_faces.rs checks its result).

    .venv-parity/bin/python -m unittest tools/models/test_quantize.py
"""
import sys
import tomllib
import unittest
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quantize  # noqa: E402


def conv(name, x, out, cin, cout, group=1):
    w = numpy_helper.from_array(np.ones((cout, cin // group, 3, 3), np.float32), f"{name}_w")
    return helper.make_node("Conv", [x, w.name], [out], name=name, group=group, pads=[1, 1, 1, 1]), w


def model():
    """stem -> relu -> depthwise -> body -> {head_a -> sigmoid -> out_a, head_b -> out_b}."""
    nodes, inits = [], []
    for n, w in (conv("stem", "x", "s", 3, 8), conv("dw", "r", "d", 8, 8, group=8),
                 conv("body", "d", "b", 8, 8), conv("head_a", "b", "ha", 8, 1),
                 conv("head_b", "b", "out_b", 8, 4)):
        nodes.append(n)
        inits.append(w)
    nodes.insert(1, helper.make_node("Relu", ["s"], ["r"], name="relu"))
    nodes.append(helper.make_node("Sigmoid", ["ha"], ["out_a"], name="sigmoid"))
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out_a", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("out_b", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph)


class KeptInFullPrecision(unittest.TestCase):
    def test_first_output_and_depthwise_layers(self):
        m = model()
        self.assertEqual(quantize.output_layers(m), {"head_a", "head_b", "sigmoid"})
        self.assertEqual(quantize.output_layers(m, depth=2), {"head_a", "head_b", "sigmoid", "body"})
        self.assertEqual(quantize.depthwise(m), {"dw"})
        self.assertEqual(quantize.kept_in_full_precision(m, "", keep_depthwise=True),
                         ["dw", "head_a", "head_b", "sigmoid", "stem"])
        self.assertEqual(quantize.kept_in_full_precision(m, ""),
                         ["head_a", "head_b", "sigmoid", "stem"])

    def test_only_prefix_keeps_everything_outside_it(self):
        m = model()
        for n in m.graph.node:
            if n.name in ("body", "dw"):
                n.name = "proxy_" + n.name
        kept = quantize.kept_in_full_precision(m, "proxy_")
        # Only the prefixed nodes may be quantised; the first of them is kept.
        self.assertNotIn("proxy_body", kept)
        self.assertIn("proxy_dw", kept)
        self.assertIn("stem", kept)


class Manifest(unittest.TestCase):
    def test_toml_round_trip(self):
        doc = {"name": "p", "version": "1-int8", "licence": {"name": 'a "b"\nc\\d\x0c\r\te', "commercial_use": False},
               "detector": {"bytes": 12, "score_threshold": 0.5},
               "thresholds": {"match_similarity": 0.58, "calibration": {"faces": 35, "rate": 1e-05}},
               "quantised": {"from": "p@1", "precision": "int8"}}
        self.assertEqual(tomllib.loads(quantize.toml_text(doc)), doc)


if __name__ == "__main__":
    unittest.main()
