//! Pixel operations that must match what insightface does with OpenCV:
//! bilinear resize (`cv2.resize`, INTER_LINEAR) and the similarity-transform
//! alignment to the ArcFace template (`norm_crop`: Umeyama estimate, then
//! `cv2.warpAffine` with a constant zero border).

use image::RgbImage;

/// Side of the aligned face crop the recogniser takes.
pub const CROP_SIZE: u32 = 112;

/// ArcFace's five-point template in the 112x112 crop.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Source index and weight of the right-hand neighbour for each destination
/// coordinate, with OpenCV's half-pixel mapping and edge clamping.
fn linear_taps(src: u32, dst: u32) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let s = (d as f64 + 0.5) * scale - 0.5;
            let mut i0 = s.floor();
            let mut frac = s - i0;
            if i0 < 0.0 {
                i0 = 0.0;
                frac = 0.0;
            }
            let mut i0 = i0 as usize;
            if i0 >= src as usize - 1 {
                i0 = src as usize - 1;
                frac = 0.0;
            }
            let i1 = (i0 + 1).min(src as usize - 1);
            (i0, i1, frac as f32)
        })
        .collect()
}

/// Resizes like `cv2.resize(img, (width, height))` (bilinear).
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    if (sw, sh) == (width, height) {
        return src.clone();
    }
    let xs = linear_taps(sw, width);
    let ys = linear_taps(sh, height);
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    let mut out = vec![0u8; width as usize * height as usize * 3];
    let mut row0 = vec![0f32; width as usize * 3];
    let mut row1 = vec![0f32; width as usize * 3];
    let horizontal = |y: usize, row: &mut [f32]| {
        let line = &raw[y * stride..(y + 1) * stride];
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let a = line[x0 * 3 + c] as f32;
                let b = line[x1 * 3 + c] as f32;
                row[x * 3 + c] = a + (b - a) * fx;
            }
        }
    };
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        horizontal(y0, &mut row0);
        horizontal(y1, &mut row1);
        let dst = &mut out[y * width as usize * 3..(y + 1) * width as usize * 3];
        for i in 0..dst.len() {
            let v = row0[i] + (row1[i] - row0[i]) * fy;
            dst[i] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer has the right size")
}

/// A 2x3 affine matrix mapping source to destination: `[a, b, tx, c, d, ty]`.
pub type Affine = [f32; 6];

/// Least-squares similarity transform (rotation, uniform scale, translation)
/// taking `src` points onto `dst` points: Umeyama's estimate, as
/// `skimage.transform.SimilarityTransform.estimate` computes it, in the
/// closed form that holds in two dimensions.
pub fn similarity_transform(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine {
    let n = src.len() as f64;
    let mean = |pts: &[[f32; 2]; 5]| {
        let (sx, sy) = pts.iter().fold((0.0f64, 0.0f64), |(x, y), p| {
            (x + p[0] as f64, y + p[1] as f64)
        });
        (sx / n, sy / n)
    };
    let (smx, smy) = mean(src);
    let (dmx, dmy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] as f64 - smx, s[1] as f64 - smy);
        let (dx, dy) = (d[0] as f64 - dmx, d[1] as f64 - dmy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if norm <= f64::EPSILON {
        // All landmarks in one point: no transform exists; map it to the template centre.
        return [1.0, 0.0, (dmx - smx) as f32, 0.0, 1.0, (dmy - smy) as f32];
    }
    let a = dot / norm;
    let b = cross / norm;
    let tx = dmx - (a * smx - b * smy);
    let ty = dmy - (b * smx + a * smy);
    [
        a as f32, -b as f32, tx as f32, b as f32, a as f32, ty as f32,
    ]
}

/// `cv2.warpAffine(img, m, (size, size), borderValue=0)`, bilinear.
pub fn warp_affine(src: &RgbImage, m: &Affine, size: u32) -> RgbImage {
    let [a, b, tx, c, d, ty] = m.map(|v| v as f64);
    let det = a * d - b * c;
    let mut out = RgbImage::new(size, size);
    if det.abs() < 1e-12 {
        return out;
    }
    // Inverse mapping: destination pixel -> source coordinate.
    let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
    let (itx, ity) = (-(ia * tx + ib * ty), -(ic * tx + id * ty));
    let (w, h) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let pixel = |x: i64, y: i64, ch: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            raw[(y as usize * w as usize + x as usize) * 3 + ch] as f64
        }
    };
    for oy in 0..size {
        for ox in 0..size {
            let sx = ia * ox as f64 + ib * oy as f64 + itx;
            let sy = ic * ox as f64 + id * oy as f64 + ity;
            let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let mut value = [0u8; 3];
            for (ch, v) in value.iter_mut().enumerate() {
                let top = pixel(x0, y0, ch) * (1.0 - fx) + pixel(x0 + 1, y0, ch) * fx;
                let bottom = pixel(x0, y0 + 1, ch) * (1.0 - fx) + pixel(x0 + 1, y0 + 1, ch) * fx;
                *v = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(ox, oy, image::Rgb(value));
        }
    }
    out
}

/// The 112x112 crop aligned to the ArcFace template (`face_align.norm_crop`).
pub fn align_face(src: &RgbImage, landmarks: &[[f32; 2]; 5]) -> RgbImage {
    let m = similarity_transform(landmarks, &ARCFACE_TEMPLATE);
    warp_affine(src, &m, CROP_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_a_flat_image_flat() {
        let src = RgbImage::from_pixel(300, 200, image::Rgb([10, 200, 77]));
        let out = resize_bilinear(&src, 123, 77);
        assert_eq!(out.dimensions(), (123, 77));
        assert!(out.pixels().all(|p| p.0 == [10, 200, 77]));
    }

    #[test]
    fn resize_by_two_averages_pixel_pairs() {
        // cv2: downscale by exactly 2 samples at 2x+0.5, the mean of two pixels.
        let src = RgbImage::from_fn(4, 1, |x, _| image::Rgb([(x * 10) as u8, 0, 0]));
        let out = resize_bilinear(&src, 2, 1);
        assert_eq!(out.get_pixel(0, 0).0[0], 5);
        assert_eq!(out.get_pixel(1, 0).0[0], 25);
    }

    #[test]
    fn similarity_recovers_a_known_transform() {
        let (scale, angle, tx, ty) = (2.5f32, 0.3f32, 40.0f32, -12.0f32);
        let src = ARCFACE_TEMPLATE;
        let dst = src.map(|[x, y]| {
            [
                scale * (angle.cos() * x - angle.sin() * y) + tx,
                scale * (angle.sin() * x + angle.cos() * y) + ty,
            ]
        });
        let m = similarity_transform(&src, &dst);
        let expected = [
            scale * angle.cos(),
            -scale * angle.sin(),
            tx,
            scale * angle.sin(),
            scale * angle.cos(),
            ty,
        ];
        for (got, want) in m.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{m:?} vs {expected:?}");
        }
    }

    #[test]
    fn aligning_a_synthetic_face_fills_the_crop_with_it() {
        let scene = facepass_synth::event_photo(11, 800, 600, &[7], (150, 150));
        let face = scene.faces[0];
        let crop = align_face(&scene.image, &face.landmarks());
        // Away from the edges every pixel of the crop comes from the face (red 255).
        for y in 4..108 {
            for x in 4..108 {
                assert!(crop.get_pixel(x, y).0[0] >= 250, "pixel {x},{y}");
            }
        }
    }

    #[test]
    fn warp_outside_the_image_is_black() {
        let src = RgbImage::from_pixel(10, 10, image::Rgb([200, 200, 200]));
        let m = [1.0, 0.0, 500.0, 0.0, 1.0, 500.0];
        let out = warp_affine(&src, &m, 16);
        assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
