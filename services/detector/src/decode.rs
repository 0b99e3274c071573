//! Image decoding with limits checked before memory is spent: the encoded
//! size first, then the declared dimensions from the header, then an
//! allocation cap for the decoder itself. EXIF orientation is applied, and
//! every colour type (grey, alpha, 16-bit, CMYK JPEG) ends up as 8-bit RGB.
//! JPEG, PNG and WebP are decoded in Rust (the `image` crate); HEIC/HEIF and
//! AVIF by Debian's libheif when it is installed ([`crate::heif`]).

use std::io::Cursor;

use facepass_core::{Error, ErrorCode};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::config::ImageLimits;

/// Decodes `bytes` to RGB, or explains why not.
pub fn decode_rgb(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, Error> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "image is {} bytes, the limit is {}",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    if bytes.is_empty() {
        return Err(Error::new(ErrorCode::ImageUndecodable, "image is empty"));
    }
    if facepass_core::media::is_heif_family(bytes) {
        return crate::heif::decode(bytes, limits);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| {
            Error::new(
                ErrorCode::ImageUndecodable,
                format!("cannot read image: {e}"),
            )
        })?;
    if reader.format().is_none() {
        return Err(Error::new(
            ErrorCode::ImageUndecodable,
            "not a supported image format (JPEG, PNG, WebP, HEIC or AVIF)",
        ));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // RGBA16 worst case per pixel, plus the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    let mut reader = reader;
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::new(
            ErrorCode::ImageUndecodable,
            "image has no pixels",
        ));
    }
    if width as u64 * height as u64 > limits.max_pixels {
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "image is {width}x{height} ({} pixels), the limit is {}",
                width as u64 * height as u64,
                limits.max_pixels
            ),
        ));
    }
    let orientation = decoder.orientation().map_err(classify)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// A JPEG decoded at a reduced scale, in the DCT domain.
pub struct Reduced {
    pub image: RgbImage,
    /// Reduced pixels per original pixel (1/2, 1/4 or 1/8).
    pub scale: f32,
    /// The original's size, EXIF orientation applied.
    pub full: (u32, u32),
}

/// Decodes a JPEG at the smallest DCT scale (1/2, 1/4 or 1/8) whose long
/// side is still at least `min_long_side`, for detection on large photos:
/// the entropy decoding is the same, but the IDCT, upsampling and colour
/// conversion run on a quarter (or less) of the pixels, and the image
/// takes a quarter of the memory. `None` when that does not apply (not a
/// JPEG, no scale small enough, CMYK or 16-bit, or anything unusual): the
/// caller then decodes in full with [`decode_rgb`], which also reports
/// every error, so limits and error codes are the same on both paths.
pub fn decode_reduced(bytes: &[u8], limits: &ImageLimits, min_long_side: u32) -> Option<Reduced> {
    if bytes.len() as u64 > limits.max_bytes || !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (w, h) = (info.width as u32, info.height as u32);
    if w == 0
        || h == 0
        || w > limits.max_side
        || h > limits.max_side
        || w as u64 * h as u64 > limits.max_pixels
        || info.pixel_format != jpeg_decoder::PixelFormat::RGB24
            && info.pixel_format != jpeg_decoder::PixelFormat::L8
    {
        return None;
    }
    let long = w.max(h);
    // The largest denominator d in {2, 4, 8} with long / d >= min_long_side.
    let d = [8u32, 4, 2]
        .into_iter()
        .find(|d| long / d >= min_long_side.max(1))?;
    // libjpeg-turbo when Debian's libturbojpeg0 is there (about twice as
    // fast: SIMD IDCT and colour conversion), jpeg-decoder otherwise.
    let (rgb, sw, sh) = match crate::turbo::decode_scaled(bytes, (w, h), d) {
        Some(decoded) => decoded,
        None => {
            let (sw, sh) = decoder
                .scale(w.div_ceil(d) as u16, h.div_ceil(d) as u16)
                .ok()?;
            let (sw, sh) = (sw as u32, sh as u32);
            if sw >= w || sw == 0 || sh == 0 {
                return None;
            }
            decoder.set_max_decoding_buffer_size(limits.max_pixels.saturating_mul(4) as usize);
            let pixels = decoder.decode().ok()?;
            let rgb: Vec<u8> = match info.pixel_format {
                jpeg_decoder::PixelFormat::RGB24 => pixels,
                _ => pixels.iter().flat_map(|v| [*v, *v, *v]).collect(),
            };
            (rgb, sw, sh)
        }
    };
    let image = RgbImage::from_raw(sw, sh, rgb)?;
    let orientation = decoder
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut dynamic = DynamicImage::ImageRgb8(image);
    dynamic.apply_orientation(orientation);
    let image = dynamic.into_rgb8();
    let swapped = image.width() != sw;
    let full = if swapped { (h, w) } else { (w, h) };
    Some(Reduced {
        // Block-wise: reduced pixel i covers original pixels [d*i, d*i + d).
        scale: 1.0 / d as f32,
        image,
        full,
    })
}

fn classify(err: image::ImageError) -> Error {
    match err {
        image::ImageError::Limits(e) => Error::new(
            ErrorCode::ImageTooLarge,
            format!("image exceeds the decoding limits: {e}"),
        ),
        image::ImageError::Unsupported(e) => Error::new(
            ErrorCode::ImageUndecodable,
            format!("unsupported image: {e}"),
        ),
        other => Error::new(
            ErrorCode::ImageUndecodable,
            format!("corrupt image: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ImageLimits {
        ImageLimits::default()
    }

    #[test]
    fn decodes_png_and_jpeg_to_rgb() {
        let scene = facepass_synth::selfie(3, 5);
        let png = decode_rgb(&scene.png(), &limits()).unwrap();
        assert_eq!(png.dimensions(), (480, 640));
        assert_eq!(png.as_raw(), scene.image.as_raw());
        let jpeg = decode_rgb(&scene.jpeg(90), &limits()).unwrap();
        assert_eq!(jpeg.dimensions(), (480, 640));
    }

    #[test]
    fn grey_and_alpha_images_become_rgb() {
        let grey = image::GrayImage::from_pixel(10, 7, image::Luma([77]));
        let mut bytes = Vec::new();
        DynamicImage::ImageLuma8(grey)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        let rgb = decode_rgb(&bytes, &limits()).unwrap();
        assert_eq!(rgb.get_pixel(3, 3).0, [77, 77, 77]);

        let rgba = image::RgbaImage::from_pixel(4, 4, image::Rgba([10, 20, 30, 0]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgba8(rgba)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode_rgb(&bytes, &limits()).unwrap().get_pixel(0, 0).0,
            [10, 20, 30]
        );
    }

    #[test]
    fn webp_decodes_to_rgb() {
        // Lossless WebP (the image crate's encoder), pixel for pixel.
        let scene = facepass_synth::selfie(4, 2);
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(scene.image.clone())
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::WebP)
            .unwrap();
        assert_eq!(&bytes[8..12], b"WEBP");
        let rgb = decode_rgb(&bytes, &limits()).unwrap();
        assert_eq!(rgb.as_raw(), scene.image.as_raw());
    }

    /// A CMYK JPEG as print workflows and some studio exports write them
    /// (Adobe APP14 marker, inverted CMYK), made with Pillow: red and blue
    /// halves over a 50% black band. Colours must come out as RGB.
    #[test]
    fn cmyk_jpeg_becomes_rgb() {
        let bytes = include_bytes!("../testdata/cmyk.jpg");
        let rgb = decode_rgb(bytes, &limits()).unwrap();
        assert_eq!(rgb.dimensions(), (64, 32));
        let near = |got: [u8; 3], want: [u8; 3]| {
            got.iter()
                .zip(want)
                .all(|(g, w)| (*g as i32 - w as i32).abs() <= 12)
        };
        for (x, y, want) in [
            (8, 8, [255, 0, 0]),
            (48, 8, [0, 0, 255]),
            (8, 24, [127, 127, 127]),
        ] {
            let got = rgb.get_pixel(x, y).0;
            assert!(
                near(got, want),
                "pixel ({x}, {y}): {got:?}, expected about {want:?}"
            );
        }
    }

    /// Mean absolute difference per channel value.
    fn mad(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let sum: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (*x as i64 - *y as i64).unsigned_abs())
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    /// HEIC (8- and 10-bit HEVC) and AVIF made by Debian's heif-enc from
    /// heif-selfie.png (tools/fixtures/make_heif.py): the pixels must come
    /// back close to the source, through Debian's libheif.
    #[test]
    fn heic_and_avif_decode_to_rgb() {
        let reference =
            decode_rgb(include_bytes!("../testdata/heif-selfie.png"), &limits()).unwrap();
        assert_eq!(reference.dimensions(), (480, 640));
        for (name, bytes, tolerance) in [
            (
                "heic",
                &include_bytes!("../testdata/heif-selfie.heic")[..],
                2.0,
            ),
            (
                "10-bit heic",
                &include_bytes!("../testdata/heif-selfie-10bit.heic")[..],
                2.0,
            ),
            (
                "avif",
                &include_bytes!("../testdata/heif-selfie.avif")[..],
                3.0,
            ),
        ] {
            assert!(facepass_core::media::is_heif_family(bytes), "{name}");
            let rgb = decode_rgb(bytes, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let diff = mad(&rgb, &reference);
            assert!(
                diff <= tolerance,
                "{name}: mean difference {diff:.2} from the source"
            );
            // The face's red square survives (the detector keys on it).
            assert!(
                rgb.get_pixel(240, 320).0[0] > 240,
                "{name}: {:?}",
                rgb.get_pixel(240, 320)
            );
        }
    }

    /// The detector decodes on several blocking threads at once: libheif
    /// contexts are per call, so concurrent HEIC/AVIF decodes must all give
    /// the same pixels.
    #[test]
    fn heic_decodes_concurrently() {
        let heic: &'static [u8] = include_bytes!("../testdata/heif-selfie.heic");
        let avif: &'static [u8] = include_bytes!("../testdata/heif-selfie.avif");
        let want = [
            decode_rgb(heic, &limits()).unwrap(),
            decode_rgb(avif, &limits()).unwrap(),
        ];
        std::thread::scope(|scope| {
            for t in 0..4 {
                let want = &want;
                scope.spawn(move || {
                    for i in 0..10 {
                        let k = (t + i) % 2;
                        let got = decode_rgb([heic, avif][k], &limits()).unwrap();
                        assert!(got == want[k], "thread {t}, round {i}: pixels differ");
                    }
                });
            }
        });
    }

    /// HEIF carries orientation as an `irot` transform, which libheif
    /// applies; the EXIF orientation the same file also carries (6) must not
    /// be applied a second time.
    #[test]
    fn heic_rotation_is_applied_once() {
        let reference =
            decode_rgb(include_bytes!("../testdata/heif-selfie.png"), &limits()).unwrap();
        let turned = image::imageops::rotate90(&reference);
        let rgb = decode_rgb(
            include_bytes!("../testdata/heif-selfie-rot90.heic"),
            &limits(),
        )
        .unwrap();
        assert_eq!(rgb.dimensions(), (640, 480));
        let diff = mad(&rgb, &turned);
        assert!(
            diff <= 2.0,
            "mean difference {diff:.2} from the source turned clockwise"
        );
    }

    #[test]
    fn bad_heic_gets_stable_codes() {
        let heic = include_bytes!("../testdata/heif-selfie.heic");
        // Truncated in the middle of the coded data, and the header alone.
        for cut in [heic.len() / 2, 40] {
            let err = decode_rgb(&heic[..cut], &limits()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ImageUndecodable, "cut {cut}: {err}");
        }
        // The declared size over the pixel limit: refused before decoding.
        let tight = ImageLimits {
            max_pixels: 480 * 640 - 1,
            ..limits()
        };
        let err = decode_rgb(heic, &tight).unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageTooLarge, "{err}");
        assert!(err.message.contains("480x640"), "{err}");
        // A forged `ispe` box claiming 60000 x 60000 pixels.
        let mut forged = heic.to_vec();
        let at = forged
            .windows(4)
            .position(|w| w == b"ispe")
            .expect("ispe box")
            + 8;
        forged[at..at + 4].copy_from_slice(&60000u32.to_be_bytes());
        forged[at + 4..at + 8].copy_from_slice(&60000u32.to_be_bytes());
        let err = decode_rgb(&forged, &limits()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageTooLarge, "{err}");
        // Not a still image: an MP4 header.
        let mut mp4 = vec![0, 0, 0, 24];
        mp4.extend_from_slice(b"ftypisom");
        mp4.extend_from_slice(&[0; 12]);
        let err = decode_rgb(&mp4, &limits()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageUndecodable, "{err}");
    }

    #[test]
    fn corrupt_and_empty_inputs_are_undecodable() {
        for bytes in [
            facepass_synth::corrupt_jpeg(1),
            Vec::new(),
            b"hello, not an image".to_vec(),
        ] {
            let err = decode_rgb(&bytes, &limits()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ImageUndecodable, "{err}");
        }
    }

    #[test]
    fn pixel_limit_is_checked_from_the_header() {
        let scene = facepass_synth::selfie(1, 2);
        let tight = ImageLimits {
            max_pixels: 480 * 640 - 1,
            ..limits()
        };
        let err = decode_rgb(&scene.png(), &tight).unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageTooLarge, "{err}");
        let tight = ImageLimits {
            max_bytes: 100,
            ..limits()
        };
        assert_eq!(
            decode_rgb(&scene.png(), &tight).unwrap_err().code,
            ErrorCode::ImageTooLarge
        );
    }

    #[test]
    fn decompression_bomb_header_is_refused_before_decoding() {
        // A PNG header that claims 60000 x 60000 pixels with a tiny body.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&60000u32.to_be_bytes());
        ihdr.extend_from_slice(&60000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&(ihdr.len() as u32).to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&[0, 0, 0, 0]); // bad CRC is fine: we must stop earlier or fail cleanly
        let err = decode_rgb(&png, &limits()).unwrap_err();
        assert!(
            matches!(
                err.code,
                ErrorCode::ImageTooLarge | ErrorCode::ImageUndecodable
            ),
            "{err}"
        );
    }

    /// A JPEG with an EXIF APP1 segment carrying `orientation`.
    fn jpeg_with_orientation(image: &image::RgbImage, orientation: u16) -> Vec<u8> {
        let plain = facepass_synth::encode_jpeg(image, 95);
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"II*\0");
        tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
        tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes()); // count
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]); // value padding
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        // 60x20, left half red, right half blue.
        let img = image::RgbImage::from_fn(60, 20, |x, _| {
            if x < 30 {
                image::Rgb([250, 0, 0])
            } else {
                image::Rgb([0, 0, 250])
            }
        });
        let upright = decode_rgb(&jpeg_with_orientation(&img, 1), &limits()).unwrap();
        assert_eq!(upright.dimensions(), (60, 20));
        // 6: the camera was turned; the image must be rotated 90 degrees clockwise.
        let rotated = decode_rgb(&jpeg_with_orientation(&img, 6), &limits()).unwrap();
        assert_eq!(rotated.dimensions(), (20, 60));
        // After a clockwise turn the former left (red) half is on top.
        assert!(
            rotated.get_pixel(10, 5).0[0] > 200,
            "{:?}",
            rotated.get_pixel(10, 5)
        );
        assert!(
            rotated.get_pixel(10, 55).0[2] > 200,
            "{:?}",
            rotated.get_pixel(10, 55)
        );
    }

    /// libjpeg-turbo's scaled decode (Debian's libturbojpeg0, which the
    /// set-up installs) and jpeg-decoder's give the same image within a few
    /// grey levels, at each scale, orientation applied the same way; a
    /// truncated stream is left to the caller's full decoder.
    #[test]
    fn turbojpeg_decodes_at_reduced_scale_like_jpeg_decoder() {
        assert_eq!(
            crate::turbo::status(),
            Ok(()),
            "libturbojpeg0 is installed by scripts/lib/deps.sh"
        );
        let scene = facepass_synth::event_photo(5, 1603, 1201, &[1, 2], (200, 300));
        let bytes = scene.jpeg(90);
        let mut rust = jpeg_decoder::Decoder::new(Cursor::new(&bytes));
        rust.read_info().unwrap();
        for d in [2u32, 4, 8] {
            let (turbo, w, h) = crate::turbo::decode_scaled(&bytes, (1603, 1201), d).unwrap();
            assert_eq!((w, h), (1603u32.div_ceil(d), 1201u32.div_ceil(d)));
            let mut rust = jpeg_decoder::Decoder::new(Cursor::new(&bytes));
            rust.read_info().unwrap();
            let (rw, rh) = rust.scale(w as u16, h as u16).unwrap();
            assert_eq!((rw as u32, rh as u32), (w, h));
            let reference = rust.decode().unwrap();
            let mad = turbo
                .iter()
                .zip(&reference)
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / turbo.len() as f64;
            assert!(mad < 2.0, "1/{d}: mean difference {mad}");
        }
        // Through decode_reduced: the scale picked, the full size kept.
        let reduced = decode_reduced(&bytes, &limits(), 400).unwrap();
        assert_eq!(reduced.scale, 0.25);
        assert_eq!(reduced.full, (1603, 1201));
        assert_eq!(reduced.image.dimensions(), (401, 301));
        // Orientation 6: turned a quarter, as the full decode turns it.
        let img = image::RgbImage::from_fn(640, 200, |x, _| {
            if x < 320 {
                image::Rgb([250, 0, 0])
            } else {
                image::Rgb([0, 0, 250])
            }
        });
        let turned = decode_reduced(&jpeg_with_orientation(&img, 6), &limits(), 80).unwrap();
        assert_eq!(turned.full, (200, 640));
        assert_eq!(turned.image.dimensions(), (25, 80));
        assert!(turned.image.get_pixel(12, 10).0[0] > 200);
        assert!(turned.image.get_pixel(12, 70).0[2] > 200);
        // Truncated: not decoded here (the full decoder says what is wrong).
        assert!(crate::turbo::decode_scaled(&bytes[..bytes.len() / 2], (1603, 1201), 2).is_none());
    }

    #[test]
    fn sixteen_bit_png_becomes_eight_bit() {
        let img = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_pixel(
            8,
            8,
            image::Rgb([65535, 32896, 0]),
        );
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb16(img)
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        let rgb = decode_rgb(&bytes, &limits()).unwrap();
        assert_eq!(rgb.get_pixel(4, 4).0, [255, 128, 0]);
    }
}
