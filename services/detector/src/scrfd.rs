//! SCRFD pre- and post-processing exactly as insightface 0.7.3's
//! `model_zoo/scrfd.py` does it: aspect-preserving resize pasted at the
//! top-left of a zero canvas, `(p - 127.5) / 128` in RGB, nine outputs taken
//! by position, anchor centres without half-pixel offset, distance decoding
//! scaled by the stride, threshold, rescale by `det_scale`, greedy NMS with
//! `+1` areas.

use image::RgbImage;

use crate::vision::resize_bilinear;

/// Strides of the three feature maps, and anchors per location.
pub const STRIDES: [u32; 3] = [8, 16, 32];
pub const ANCHORS_PER_LOCATION: usize = 2;

/// One detected face in original-image coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

/// The network input and the scale that maps it back to the image.
pub struct Prepared {
    /// NCHW float32, 1 x 3 x height x width.
    pub tensor: Vec<f32>,
    pub width: u32,
    pub height: u32,
    pub det_scale: f32,
}

/// The size `image` is resized to so it fits a `width` x `height` canvas.
/// insightface computes the ratios in float64 and truncates with `int()`;
/// float32 would give some sizes (870x1200, say) one pixel more.
pub fn resized_size(w: u32, h: u32, width: u32, height: u32) -> (u32, u32) {
    let im_ratio = h as f64 / w as f64;
    let model_ratio = height as f64 / width as f64;
    if im_ratio > model_ratio {
        (((height as f64) / im_ratio) as u32, height)
    } else {
        (width, ((width as f64) * im_ratio) as u32)
    }
}

/// Rows (or columns) of the square's black padding a fitted canvas keeps
/// beyond the image: a face at the image's padded edge sees what it sees
/// in the square for this far, where a canvas ending at the image would
/// give it the convolutions' zero padding (grey) instead; the fixture
/// detector lost such a face without it.
pub const FITTED_MARGIN: u32 = 32;

/// The smallest canvas, sides multiples of 32 (SCRFD's largest stride),
/// that holds a `w` x `h` image resized as [`prepare`] would resize it for
/// a `size` square, with [`FITTED_MARGIN`] of its padding: the square
/// without most of its padding rows or columns.
pub fn fitted_canvas(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (new_w, new_h) = resized_size(w, h, size, size);
    let up = |v: u32| {
        if v >= size {
            size
        } else {
            ((v.max(1) + FITTED_MARGIN).div_ceil(32) * 32).min(size)
        }
    };
    (up(new_w), up(new_h))
}

/// Resizes `image` into a `size` x `size` canvas and normalises it
/// (insightface's default square input).
pub fn prepare(image: &RgbImage, size: u32) -> Prepared {
    prepare_canvas(image, size, size)
}

/// Resizes `image`, keeping its aspect ratio, to fit a `width` x `height`
/// canvas at the top-left, and normalises it.
pub fn prepare_canvas(image: &RgbImage, width: u32, height: u32) -> Prepared {
    let (w, h) = image.dimensions();
    let (new_w, new_h) = resized_size(w, h, width, height);
    prepare_resized(image, (new_w, new_h), width, height)
}

/// [`prepare`] on the [`fitted_canvas`]: the image resized exactly as for
/// the `size` square, on a canvas without the square's padding.
pub fn prepare_fitted(image: &RgbImage, size: u32) -> Prepared {
    let (w, h) = image.dimensions();
    let (width, height) = fitted_canvas(w, h, size);
    prepare_resized(image, resized_size(w, h, size, size), width, height)
}

/// `image` resized to `new_w` x `new_h` at the top-left of a `width` x
/// `height` canvas, normalised.
fn prepare_resized(
    image: &RgbImage,
    (new_w, new_h): (u32, u32),
    width: u32,
    height: u32,
) -> Prepared {
    let h = image.height();
    let (new_w, new_h) = (new_w.clamp(1, width), new_h.clamp(1, height));
    let det_scale = new_h as f32 / h as f32;
    let resized = resize_bilinear(image, new_w, new_h);

    let plane = (width * height) as usize;
    // Zero pixels normalise to -127.5/128: the canvas outside the image.
    let mut tensor = vec![-127.5f32 / 128.0; plane * 3];
    let raw = resized.as_raw();
    for y in 0..new_h as usize {
        for x in 0..new_w as usize {
            let src = (y * new_w as usize + x) * 3;
            let dst = y * width as usize + x;
            for c in 0..3 {
                tensor[c * plane + dst] = (raw[src + c] as f32 - 127.5) / 128.0;
            }
        }
    }
    Prepared {
        tensor,
        width,
        height,
        det_scale,
    }
}

/// Top-left corners of `tile` x `tile` tiles that cover a `width` x
/// `height` image, neighbours overlapping by at least `overlap` pixels,
/// spread evenly so the last tile ends at the image's edge.
pub fn tiles(width: u32, height: u32, tile: u32, overlap: u32) -> Vec<(u32, u32)> {
    let starts = |len: u32| -> Vec<u32> {
        if len <= tile {
            return vec![0];
        }
        let step = tile.saturating_sub(overlap).max(1);
        let n = (len - overlap).div_ceil(step).max(2);
        let span = len - tile;
        (0..n)
            .map(|i| (span as u64 * i as u64 / (n - 1) as u64) as u32)
            .collect()
    };
    let (xs, ys) = (starts(width), starts(height));
    ys.iter()
        .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
        .collect()
}

/// The `tile` x `tile` region of `image` at (`x0`, `y0`), unscaled,
/// normalised like [`prepare_canvas`]; what lies beyond the image is the
/// zero canvas.
pub fn prepare_tile(image: &RgbImage, x0: u32, y0: u32, tile: u32) -> Prepared {
    let plane = (tile * tile) as usize;
    let mut tensor = vec![-127.5f32 / 128.0; plane * 3];
    let (w, h) = image.dimensions();
    let raw = image.as_raw();
    for y in 0..tile.min(h.saturating_sub(y0)) {
        for x in 0..tile.min(w.saturating_sub(x0)) {
            let src = (((y0 + y) * w + x0 + x) * 3) as usize;
            let dst = (y * tile + x) as usize;
            for c in 0..3 {
                tensor[c * plane + dst] = (raw[src + c] as f32 - 127.5) / 128.0;
            }
        }
    }
    Prepared {
        tensor,
        width: tile,
        height: tile,
        det_scale: 1.0,
    }
}

/// The nine outputs of an SCRFD network, by position: scores for strides
/// 8, 16, 32, then boxes, then keypoints.
pub struct RawOutputs<'a> {
    pub scores: [&'a [f32]; 3],
    pub boxes: [&'a [f32]; 3],
    pub keypoints: [&'a [f32]; 3],
}

/// Decodes raw outputs into detections in original-image coordinates,
/// sorted by score and de-duplicated by NMS.
pub fn decode(
    outputs: &RawOutputs<'_>,
    (input_width, input_height): (u32, u32),
    det_scale: f32,
    score_threshold: f32,
    nms_threshold: f32,
) -> Result<Vec<Detection>, String> {
    let mut candidates = Vec::new();
    for (level, &stride) in STRIDES.iter().enumerate() {
        let (grid_w, grid_h) = (
            (input_width / stride) as usize,
            (input_height / stride) as usize,
        );
        let count = grid_w * grid_h * ANCHORS_PER_LOCATION;
        let (scores, boxes, kps) = (
            outputs.scores[level],
            outputs.boxes[level],
            outputs.keypoints[level],
        );
        if scores.len() != count || boxes.len() != count * 4 || kps.len() != count * 10 {
            return Err(format!(
                "stride {stride}: expected {count} anchors, got {} scores, {} box and {} keypoint values",
                scores.len(),
                boxes.len(),
                kps.len()
            ));
        }
        let s = stride as f32;
        for (anchor, &score) in scores.iter().enumerate() {
            if score < score_threshold {
                continue;
            }
            let location = anchor / ANCHORS_PER_LOCATION;
            let cx = (location % grid_w) as f32 * s;
            let cy = (location / grid_w) as f32 * s;
            let d = &boxes[anchor * 4..anchor * 4 + 4];
            let bbox = [
                (cx - d[0] * s) / det_scale,
                (cy - d[1] * s) / det_scale,
                (cx + d[2] * s) / det_scale,
                (cy + d[3] * s) / det_scale,
            ];
            let k = &kps[anchor * 10..anchor * 10 + 10];
            let mut landmarks = [[0f32; 2]; 5];
            for (i, point) in landmarks.iter_mut().enumerate() {
                *point = [
                    (cx + k[2 * i] * s) / det_scale,
                    (cy + k[2 * i + 1] * s) / det_scale,
                ];
            }
            candidates.push(Detection {
                bbox,
                score,
                landmarks,
            });
        }
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(nms(candidates, nms_threshold))
}

/// Greedy non-maximum suppression over score-sorted detections, with
/// insightface's `+1` pixel areas.
pub fn nms(sorted: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut keep: Vec<Detection> = Vec::new();
    let mut suppressed = vec![false; sorted.len()];
    for i in 0..sorted.len() {
        if suppressed[i] {
            continue;
        }
        let a = &sorted[i].bbox;
        for j in i + 1..sorted.len() {
            if suppressed[j] {
                continue;
            }
            let b = &sorted[j].bbox;
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
            let inter = w * h;
            let iou = inter / (area(a) + area(b) - inter);
            if iou > threshold {
                suppressed[j] = true;
            }
        }
        keep.push(sorted[i].clone());
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection {
            bbox,
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn nms_drops_overlaps_and_keeps_separate_faces() {
        let kept = nms(
            vec![
                det([0.0, 0.0, 100.0, 100.0], 0.9),
                det([2.0, 2.0, 102.0, 102.0], 0.8),
                det([300.0, 0.0, 400.0, 100.0], 0.7),
            ],
            0.4,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
    }

    #[test]
    fn prepare_scales_the_long_side_to_the_input() {
        let image = RgbImage::from_pixel(1280, 960, image::Rgb([255, 0, 0]));
        let p = prepare(&image, 640);
        assert_eq!(p.det_scale, 0.5);
        let plane = 640 * 640;
        // inside the resized image: red channel normalised from 255
        assert!((p.tensor[0] - 127.5 / 128.0).abs() < 1e-6);
        // below it (rows 480..640): the zero canvas
        assert!((p.tensor[500 * 640] + 127.5 / 128.0).abs() < 1e-6);
        assert!(
            (p.tensor[plane] + 127.5 / 128.0).abs() < 1e-6,
            "green of a red pixel"
        );
    }

    #[test]
    fn tiles_cover_the_image_with_overlap() {
        assert_eq!(tiles(500, 400, 640, 128), vec![(0, 0)]);
        let t = tiles(1920, 1280, 640, 128);
        let xs: Vec<u32> = t.iter().filter(|p| p.1 == 0).map(|p| p.0).collect();
        let ys: Vec<u32> = t.iter().filter(|p| p.0 == 0).map(|p| p.1).collect();
        assert_eq!(xs, vec![0, 426, 853, 1280]);
        assert_eq!(ys, vec![0, 320, 640]);
        assert_eq!(t.len(), 12);
        // every pair of neighbours overlaps by at least 128, the last tile
        // ends at the edge
        for pair in xs.windows(2).chain(ys.windows(2)) {
            assert!(pair[0] + 640 - pair[1] >= 128);
        }
        assert_eq!(xs.last().unwrap() + 640, 1920);
        assert_eq!(ys.last().unwrap() + 640, 1280);
        // just over one tile: two tiles, overlapping by most of their width
        assert_eq!(tiles(700, 10, 640, 128), vec![(0, 0), (60, 0)]);
    }

    #[test]
    fn prepare_tile_copies_the_region_unscaled() {
        let mut image = RgbImage::new(100, 50);
        image.put_pixel(70, 30, image::Rgb([255, 0, 0]));
        let p = prepare_tile(&image, 60, 20, 64);
        assert_eq!((p.width, p.height, p.det_scale), (64, 64, 1.0));
        // (70, 30) lands at (10, 10) of the tile
        assert!((p.tensor[10 * 64 + 10] - 127.5 / 128.0).abs() < 1e-6);
        // column 40 of the tile is x = 100: past the image, the zero canvas
        assert!((p.tensor[5 * 64 + 40] + 127.5 / 128.0).abs() < 1e-6);
        // inside the image, a black pixel normalises the same way
        assert!((p.tensor[5 * 64 + 5] + 127.5 / 128.0).abs() < 1e-6);
    }

    #[test]
    fn resized_size_truncates_like_insightface() {
        // 640 / (1200 / 870) is 463.99999... in float64: int() gives 463.
        assert_eq!(resized_size(870, 1200, 640, 640), (463, 640));
        assert_eq!(resized_size(6000, 4000, 640, 640), (640, 426));
        assert_eq!(resized_size(640, 640, 640, 640), (640, 640));
        // The fitted canvas: the same resize, without the padding.
        // 426 rows of image and at least 32 of padding.
        assert_eq!(fitted_canvas(6000, 4000, 640), (640, 480));
        assert_eq!(fitted_canvas(4000, 6000, 640), (480, 640));
        assert_eq!(fitted_canvas(4032, 3024, 640), (640, 512));
        assert_eq!(fitted_canvas(640, 640, 640), (640, 640));
        assert_eq!(fitted_canvas(640, 600, 640), (640, 640));
        assert_eq!(fitted_canvas(10000, 10, 640), (640, 64));
        // Its content is the square's, row for row.
        let image = RgbImage::from_fn(900, 600, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, 7])
        });
        let (square, fitted) = (prepare(&image, 640), prepare_fitted(&image, 640));
        assert_eq!((fitted.width, fitted.height), (640, 480));
        assert_eq!(square.det_scale, fitted.det_scale);
        for c in 0..3 {
            let (sq, fi) = (
                &square.tensor[c * 640 * 640..],
                &fitted.tensor[c * 640 * 480..],
            );
            assert_eq!(sq[..640 * 480], fi[..640 * 480]);
        }
        // A portrait photo whose resized width is a multiple of 32.
        let tall = RgbImage::new(448, 640);
        let p = prepare_fitted(&tall, 640);
        assert_eq!((p.width, p.height, p.det_scale), (480, 640, 1.0));
    }

    #[test]
    fn decode_places_anchor_predictions_in_image_coordinates() {
        let size = 64u32;
        let mut scores: Vec<Vec<f32>> = Vec::new();
        let mut boxes: Vec<Vec<f32>> = Vec::new();
        let mut kps: Vec<Vec<f32>> = Vec::new();
        for &stride in &STRIDES {
            let n = ((size / stride) * (size / stride)) as usize * 2;
            scores.push(vec![0.0; n]);
            boxes.push(vec![1.0; n * 4]);
            kps.push(vec![0.0; n * 10]);
        }
        // stride 8, grid 8x8: location (row 2, col 3), second anchor
        let anchor = (2 * 8 + 3) * 2 + 1;
        scores[0][anchor] = 0.9;
        let out = RawOutputs {
            scores: [&scores[0], &scores[1], &scores[2]],
            boxes: [&boxes[0], &boxes[1], &boxes[2]],
            keypoints: [&kps[0], &kps[1], &kps[2]],
        };
        let found = decode(&out, (size, size), 0.5, 0.5, 0.4).unwrap();
        assert_eq!(found.len(), 1);
        // centre (24, 16), distances 1*8, then divided by det_scale 0.5
        assert_eq!(found[0].bbox, [32.0, 16.0, 64.0, 48.0]);
        assert_eq!(found[0].landmarks[0], [48.0, 32.0]);
    }

    #[test]
    fn decode_rejects_outputs_of_the_wrong_size() {
        let empty: Vec<f32> = Vec::new();
        let out = RawOutputs {
            scores: [&empty, &empty, &empty],
            boxes: [&empty, &empty, &empty],
            keypoints: [&empty, &empty, &empty],
        };
        assert!(decode(&out, (640, 640), 1.0, 0.5, 0.4).is_err());
    }
}
