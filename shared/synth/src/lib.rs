//! Synthetic faces, event photos and selfies — no real person's face is
//! ever needed to test or demonstrate FacePass.
//!
//! A synthetic face of identity `id` (1..=31) is an axis-aligned square of
//! side `L`: red channel 255 (what the fixture detector looks for), and a 4x4
//! grid of cells whose green and blue levels spell row `id` of the 32x32
//! Hadamard matrix (what the fixture recogniser reads). Distinct identities
//! are therefore orthogonal codes; the same identity at any size, position or
//! compression maps to the same embedding. Backgrounds keep red <= 170 so
//! nothing else looks like a face. tools/fixtures/make_models.py builds the
//! matching ONNX models; the layout here and there must agree.

use image::{ImageEncoder, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Identities available: rows 1..=31 of the Hadamard matrix.
pub const MAX_IDENTITY: u8 = 31;

/// The ArcFace alignment template (112x112), landmarks in pixel coordinates.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Entry (row, col) of the 32x32 Sylvester Hadamard matrix: +1 or -1.
pub fn hadamard(row: usize, col: usize) -> i32 {
    if (row & col).count_ones().is_multiple_of(2) {
        1
    } else {
        -1
    }
}

/// One face drawn into an image: its identity and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Face {
    pub identity: u8,
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

impl Face {
    /// Ground-truth box in insightface's convention (pixel centres on integer
    /// coordinates): x1, y1, x2, y2.
    pub fn bbox(&self) -> [f32; 4] {
        let (x, y, l) = (self.x as f32, self.y as f32, self.size as f32);
        [x - 0.5, y - 0.5, x + l - 0.5, y + l - 0.5]
    }

    /// Ground-truth landmarks: the template scaled onto the face square.
    pub fn landmarks(&self) -> [[f32; 2]; 5] {
        let [x1, y1, _, _] = self.bbox();
        let scale = self.size as f32 / 112.0;
        ARCFACE_TEMPLATE.map(|[tx, ty]| [x1 + tx * scale, y1 + ty * scale])
    }
}

/// An image with the faces drawn into it.
pub struct Scene {
    pub image: RgbImage,
    pub faces: Vec<Face>,
}

impl Scene {
    pub fn png(&self) -> Vec<u8> {
        encode_png(&self.image)
    }

    pub fn jpeg(&self, quality: u8) -> Vec<u8> {
        encode_jpeg(&self.image, quality)
    }
}

/// Draws `face` into `image` (clipped at the borders).
pub fn draw_face(image: &mut RgbImage, face: &Face) {
    assert!(
        (1..=MAX_IDENTITY).contains(&face.identity),
        "identity {} out of 1..=31",
        face.identity
    );
    let id = face.identity as usize;
    let l = face.size;
    for dy in 0..l {
        for dx in 0..l {
            let (px, py) = (face.x + dx, face.y + dy);
            if px >= image.width() || py >= image.height() {
                continue;
            }
            let cell = ((dy * 4 / l) * 4 + dx * 4 / l) as usize;
            let g = 128 + 80 * hadamard(id, cell);
            let b = 128 + 80 * hadamard(id, 16 + cell);
            image.put_pixel(px, py, Rgb([255, g as u8, b as u8]));
        }
    }
}

/// A background with smooth gradients, a few "clothes" rectangles and noise,
/// red always <= 170.
pub fn background(rng: &mut StdRng, width: u32, height: u32) -> RgbImage {
    let base = [
        rng.gen_range(20..120),
        rng.gen_range(20..220),
        rng.gen_range(20..220),
    ];
    let slope = [
        rng.gen_range(-40..40),
        rng.gen_range(-60..60),
        rng.gen_range(-60..60),
    ];
    let mut image = RgbImage::from_fn(width, height, |x, y| {
        let t = (x as f32 / width as f32 + y as f32 / height as f32) * 0.5;
        let c = |i: usize| (base[i] as f32 + slope[i] as f32 * t).clamp(0.0, 255.0);
        Rgb([c(0).min(150.0) as u8, c(1) as u8, c(2) as u8])
    });
    for _ in 0..rng.gen_range(2..6) {
        let (w, h) = (
            rng.gen_range(width / 8..width / 3),
            rng.gen_range(height / 8..height / 3),
        );
        let (x0, y0) = (rng.gen_range(0..width - w), rng.gen_range(0..height - h));
        let colour = Rgb([rng.gen_range(0..150), rng.gen(), rng.gen()]);
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                image.put_pixel(x, y, colour);
            }
        }
    }
    for pixel in image.pixels_mut() {
        for (i, channel) in pixel.0.iter_mut().enumerate() {
            let noisy = *channel as i32 + rng.gen_range(-6..=6);
            let cap = if i == 0 { 170 } else { 255 };
            *channel = noisy.clamp(0, cap) as u8;
        }
    }
    image
}

/// An event photo of `width` x `height` with one face per identity given,
/// each in its own cell of a 3x2 grid (2x3 for portrait photos; at most six
/// faces), sized `face_size` pixels (min, max). Faces stay near their cell
/// centres, so neighbours are about a third of the long side apart.
pub fn event_photo(
    seed: u64,
    width: u32,
    height: u32,
    identities: &[u8],
    face_size: (u32, u32),
) -> Scene {
    assert!(
        identities.len() <= 6,
        "at most six faces per synthetic photo"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut image = background(&mut rng, width, height);
    let (cols, rows) = if width >= height {
        (3u32, 2u32)
    } else {
        (2u32, 3u32)
    };
    let (cell_w, cell_h) = (width / cols, height / rows);
    let mut cells: Vec<u32> = (0..cols * rows).collect();
    // Fisher-Yates with our own rng keeps the layout a pure function of the seed.
    for i in (1..cells.len()).rev() {
        let j = rng.gen_range(0..=i);
        cells.swap(i, j);
    }
    let mut faces = Vec::new();
    for (&identity, &cell) in identities.iter().zip(&cells) {
        let max = face_size.1.min(cell_w * 6 / 10).min(cell_h * 6 / 10);
        let size = rng.gen_range(face_size.0.min(max)..=max);
        let (cx, cy) = ((cell % cols) * cell_w, (cell / cols) * cell_h);
        let slack_x = (cell_w - size) / 8;
        let slack_y = (cell_h - size) / 8;
        let x = cx + (cell_w - size) / 2 + rng.gen_range(0..=slack_x) - slack_x / 2;
        let y = cy + (cell_h - size) / 2 + rng.gen_range(0..=slack_y) - slack_y / 2;
        let face = Face {
            identity,
            x,
            y,
            size,
        };
        draw_face(&mut image, &face);
        faces.push(face);
    }
    Scene { image, faces }
}

/// A phone-style selfie (portrait, 480x640) of one identity, face 140 to
/// 200 pixels, somewhere near the centre.
pub fn selfie(seed: u64, identity: u8) -> Scene {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e1f_1e00);
    let size = rng.gen_range(140..=200);
    portrait(seed, identity, size)
}

/// A 480x640 portrait with one face of `size` pixels near the centre
/// (a close-up when `size` approaches the width).
pub fn portrait(seed: u64, identity: u8, size: u32) -> Scene {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0907_7a17);
    let (width, height) = (480u32, 640u32);
    let size = size.min(width - 2);
    let mut image = background(&mut rng, width, height);
    let jitter_x = ((width - size) / 4).min(20) as i64;
    let jitter_y = ((height - size) / 4).min(30) as i64;
    let x = ((width - size) / 2) as i64 + rng.gen_range(-jitter_x..=jitter_x);
    let y = ((height - size) / 2) as i64 + rng.gen_range(-jitter_y..=jitter_y);
    let face = Face {
        identity,
        x: x as u32,
        y: y as u32,
        size,
    };
    draw_face(&mut image, &face);
    Scene {
        image,
        faces: vec![face],
    }
}

/// A large group photo: `cols` x `rows` faces of `size` pixels on a regular
/// grid (identities cycle through 1..=31), for small-face tests.
pub fn group_photo(seed: u64, width: u32, height: u32, cols: u32, rows: u32, size: u32) -> Scene {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut image = background(&mut rng, width, height);
    let (cell_w, cell_h) = (width / cols, height / rows);
    assert!(
        size < cell_w && size < cell_h,
        "faces do not fit their cells"
    );
    let mut faces = Vec::new();
    for row in 0..rows {
        for col in 0..cols {
            let identity = ((row * cols + col) % MAX_IDENTITY as u32) as u8 + 1;
            let face = Face {
                identity,
                x: col * cell_w + (cell_w - size) / 2,
                y: row * cell_h + (cell_h - size) / 2,
                size,
            };
            draw_face(&mut image, &face);
            faces.push(face);
        }
    }
    Scene { image, faces }
}

pub fn encode_png(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding png into memory cannot fail");
    out
}

pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding jpeg into memory cannot fail");
    out
}

/// Bytes that start like a JPEG and then are garbage: a corrupt upload.
pub fn corrupt_jpeg(seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..4096).map(|_| rng.gen::<u8>()));
    bytes
}

/// An EXIF block (little-endian TIFF) as cameras write it: IFD0 with
/// `DateTime` (0x0132) and the Exif IFD pointer, the Exif IFD with
/// `DateTimeOriginal` (0x9003) and `OffsetTimeOriginal` (0x9011) when given.
/// Times are EXIF text, `YYYY:MM:DD HH:MM:SS`; offsets `+03:00`.
pub fn exif_tiff(original: Option<&str>, offset: Option<&str>, modified: &str) -> Vec<u8> {
    let mut sub: Vec<(u16, &str)> = Vec::new();
    if let Some(o) = original {
        sub.push((0x9003u16, o));
    }
    if let Some(o) = offset {
        sub.push((0x9011u16, o));
    }
    // Layout: header 8, IFD0 (2 entries) at 8, Exif IFD after it, then strings.
    let ifd0_len = 2 + 2 * 12 + 4;
    let sub_at = 8 + ifd0_len;
    let sub_len = 2 + sub.len() * 12 + 4;
    let mut strings: Vec<u8> = Vec::new();
    let strings_at = sub_at + sub_len;
    let mut place = |s: &str| {
        let at = strings_at + strings.len();
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        (at as u32, s.len() as u32 + 1)
    };
    let mut out = b"II\x2a\x00".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    let entry = |out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    };
    let (m_at, m_len) = place(modified);
    out.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut out, 0x0132, 2, m_len, m_at);
    entry(&mut out, 0x8769, 4, 1, sub_at as u32);
    out.extend_from_slice(&0u32.to_le_bytes());
    let placed: Vec<(u16, u32, u32)> = sub
        .iter()
        .map(|(tag, s)| {
            let (at, len) = place(s);
            (*tag, at, len)
        })
        .collect();
    out.extend_from_slice(&(placed.len() as u16).to_le_bytes());
    for (tag, at, len) in placed {
        entry(&mut out, tag, 2, len, at);
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&strings);
    out
}

/// `jpeg` with an APP1 EXIF segment saying it was taken at `original`
/// (EXIF text) in the time zone `offset` (`+03:00`), when given.
pub fn with_capture_time(jpeg: &[u8], original: &str, offset: Option<&str>) -> Vec<u8> {
    let block = exif_tiff(Some(original), offset, original);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&block);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hadamard_rows_are_orthogonal() {
        for a in 0..32 {
            for b in 0..32 {
                let dot: i32 = (0..32).map(|c| hadamard(a, c) * hadamard(b, c)).sum();
                assert_eq!(dot, if a == b { 32 } else { 0 }, "rows {a} and {b}");
            }
        }
    }

    #[test]
    fn photo_is_deterministic_and_faces_do_not_overlap() {
        let a = event_photo(7, 1600, 1200, &[1, 2, 3, 4, 5, 6], (90, 170));
        let b = event_photo(7, 1600, 1200, &[1, 2, 3, 4, 5, 6], (90, 170));
        assert_eq!(a.image.as_raw(), b.image.as_raw());
        assert_eq!(a.faces.len(), 6);
        for (i, f) in a.faces.iter().enumerate() {
            for g in &a.faces[i + 1..] {
                let apart_x = f.x + f.size <= g.x || g.x + g.size <= f.x;
                let apart_y = f.y + f.size <= g.y || g.y + g.size <= f.y;
                assert!(apart_x || apart_y, "{f:?} overlaps {g:?}");
            }
        }
    }

    #[test]
    fn only_faces_are_red() {
        let scene = event_photo(3, 800, 600, &[9], (100, 120));
        let face = scene.faces[0];
        for (x, y, p) in scene.image.enumerate_pixels() {
            let inside = (face.x..face.x + face.size).contains(&x)
                && (face.y..face.y + face.size).contains(&y);
            assert_eq!(p.0[0] == 255, inside, "pixel {x},{y}");
            if !inside {
                assert!(p.0[0] <= 170);
            }
        }
    }

    #[test]
    fn encoders_round_trip() {
        let scene = selfie(1, 4);
        let decoded = image::load_from_memory(&scene.png()).unwrap().to_rgb8();
        assert_eq!(decoded.as_raw(), scene.image.as_raw());
        assert!(image::load_from_memory(&scene.jpeg(90)).is_ok());
        assert!(image::load_from_memory(&corrupt_jpeg(1)).is_err());
    }
}
