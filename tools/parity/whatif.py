#!/usr/bin/env python3
"""Run reference.py with cv2.resize / cv2.warpAffine replaced: how much does it matter?

Usage:  python tools/parity/whatif.py MODE MODEL_DIR IMAGE_DIR OUT_JSON

MODE:
  emulated      cv2_emulation.resize_fixed (SIMD rounding) + warp_fixed: the numpy
                models of OpenCV 4.x; expected bit-identical to the reference
  resize_float  textbook float bilinear letterbox resize (half-pixel centres)
  resize_pil    Pillow's BILINEAR resize, whose kernel widens when downscaling
                (antialiasing, like the Rust image crate's Triangle filter)
  warp_float    float-coordinate bilinear warp (no 1/32 grid; what OpenCV 5 does)
  letterbox_f32 letterbox size from an f32 im_ratio (int(f32(640) / f32(h/w)))
                instead of Python's f64: 870x1200 -> 464 wide, not 463
  facepass      a model of services/detector/src/{scrfd,vision}.rs as of commit
                91bbdf0: letterbox_f32 + resize_float + warp_float, M rounded to f32

Then compare the output with the real reference:
  python tools/parity/compare.py REF.json OUT_JSON
"""

import os
import runpy
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cv2_emulation as emu  # noqa: E402


def pil_resize(img, size):
    from PIL import Image
    return np.ascontiguousarray(
        np.asarray(Image.fromarray(img[..., ::-1]).resize(size, Image.BILINEAR))[..., ::-1])


def letterbox_f32_detect(self, img, input_size=None, max_num=0, metric="default"):
    """RetinaFace/SCRFD.detect (insightface 0.7.3) with the new size computed in f32."""
    input_size = self.input_size if input_size is None else input_size
    r = np.float32(img.shape[0]) / np.float32(img.shape[1])
    if r > np.float32(1):
        new_h, new_w = input_size[1], int(np.float32(input_size[1]) / r)
    else:
        new_w, new_h = input_size[0], int(np.float32(input_size[0]) * r)
    det_scale = float(new_h) / img.shape[0]
    det_img = np.zeros((input_size[1], input_size[0], 3), dtype=np.uint8)
    det_img[:new_h, :new_w, :] = cv2.resize(img, (new_w, new_h))
    scores_list, bboxes_list, kpss_list = self.forward(det_img, self.det_thresh)
    order = np.vstack(scores_list).ravel().argsort()[::-1]
    bboxes = np.vstack(bboxes_list) / det_scale
    kpss = np.vstack(kpss_list) / det_scale
    pre_det = np.hstack((bboxes, np.vstack(scores_list))).astype(np.float32, copy=False)[order, :]
    keep = self.nms(pre_det)
    return pre_det[keep, :], kpss[order][keep]


def patch_letterbox_f32():
    from insightface.model_zoo import retinaface, scrfd
    retinaface.RetinaFace.detect = letterbox_f32_detect
    scrfd.SCRFD.detect = letterbox_f32_detect


def f32_matrix_warp(img, m, size, borderValue=0.0):
    """Float warp with M rounded to f32 (vision.rs stores the Affine as [f32; 6])."""
    return emu.warp_float(img, np.asarray(m, np.float32).astype(np.float64), size[0])


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    mode = sys.argv.pop(1)
    if mode == "emulated":
        cv2.resize = lambda img, size: emu.resize_fixed(img, size[0], size[1], simd_rounding=True)
        cv2.warpAffine = lambda img, m, size, borderValue=0.0: emu.warp_fixed(img, m, size[0])
    elif mode == "resize_float":
        cv2.resize = lambda img, size: emu.resize_float(img, size[0], size[1])
    elif mode == "resize_pil":
        cv2.resize = pil_resize
    elif mode == "warp_float":
        cv2.warpAffine = lambda img, m, size, borderValue=0.0: emu.warp_float(img, m, size[0])
    elif mode == "letterbox_f32":
        patch_letterbox_f32()
    elif mode == "facepass":
        patch_letterbox_f32()
        cv2.resize = lambda img, size: emu.resize_float(img, size[0], size[1])
        cv2.warpAffine = f32_matrix_warp
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    sys.argv[0] = os.path.join(HERE, "reference.py")
    runpy.run_path(sys.argv[0], run_name="__main__")  # exits via sys.exit(main(...))
    return 0


if __name__ == "__main__":
    sys.exit(main())
