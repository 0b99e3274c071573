//! The detector's decoder entry point, which every uploaded photo and every
//! selfie reaches: any byte string gets an image within the limits or a
//! clear error, never a panic or an allocation past the limits.
#![no_main]

use facepass_detector::config::ImageLimits;
use facepass_detector::decode::{decode_reduced, decode_rgb};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImageLimits = ImageLimits {
    max_bytes: 4 << 20,
    max_pixels: 16_000_000,
    max_side: 8_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_rgb(data, &LIMITS) {
        let (w, h) = image.dimensions();
        assert!(w > 0 && h > 0, "an empty image was decoded");
        assert!(w <= LIMITS.max_side && h <= LIMITS.max_side, "{w}x{h} past max_side");
        assert!(u64::from(w) * u64::from(h) <= LIMITS.max_pixels, "{w}x{h} past max_pixels");
    }
    // Reduced-scale (DCT-domain) JPEG decoding, used for detection on large photos.
    let _ = decode_reduced(data, &LIMITS, 640);
});
