//! Property test of the decoder entry point: no byte string — random,
//! truncated, bit-flipped or with forged dimensions — makes it panic, and no
//! input makes it allocate past the configured limits. A counting global
//! allocator measures the peak heap use of each call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use facepass_core::ErrorCode;
use facepass_detector::config::ImageLimits;
use facepass_detector::decode::decode_rgb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::SeqCst) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Limits small enough that a bomb would blow past them.
fn limits() -> ImageLimits {
    ImageLimits {
        max_bytes: 4 * 1024 * 1024,
        max_pixels: 4_000_000,
        max_side: 4_000,
    }
}

/// Peak heap growth during one decode, in bytes.
fn decode_peak(bytes: &[u8]) -> (Result<(u32, u32), ErrorCode>, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let result = decode_rgb(bytes, &limits())
        .map(|img| img.dimensions())
        .map_err(|e| e.code);
    (result, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn seeds() -> Vec<Vec<u8>> {
    let scene = facepass_synth::event_photo(1, 640, 480, &[1, 2], (60, 90));
    let mut webp = Vec::new();
    image::DynamicImage::ImageRgb8(scene.image.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut webp),
            image::ImageFormat::WebP,
        )
        .unwrap();
    // HEIC and AVIF go through Debian's libheif (C): it must fail cleanly on
    // the same mutations. Its own allocations are C mallocs, not counted
    // below; they are bounded by the size checked before decoding and by
    // the limit libheif is given.
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../services/detector/testdata");
    let heic = std::fs::read(format!("{testdata}/heif-selfie.heic")).unwrap();
    let avif = std::fs::read(format!("{testdata}/heif-selfie.avif")).unwrap();
    vec![scene.png(), scene.jpeg(85), webp, heic, avif]
}

/// The most a decode may take: the RGBA16 worst case of the largest allowed
/// image, plus fixed overhead for decoder tables.
fn budget() -> usize {
    let l = limits();
    (l.max_pixels as usize) * 8 + 16 * 1024 * 1024
}

#[test]
fn mutated_images_never_panic_or_overallocate() {
    let mut rng = StdRng::seed_from_u64(0xfacade);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let seeds = seeds();
    for seed in &seeds {
        for round in 0..400 {
            let mut bytes = seed.clone();
            match round % 4 {
                0 => bytes.truncate(rng.gen_range(0..bytes.len())),
                1 => {
                    for _ in 0..rng.gen_range(1..16) {
                        let i = rng.gen_range(0..bytes.len());
                        bytes[i] ^= 1 << rng.gen_range(0..8);
                    }
                }
                2 => {
                    // Overwrite a run in the header, where dimensions live.
                    let end = bytes.len().min(64);
                    let i = rng.gen_range(0..end);
                    for b in bytes.iter_mut().skip(i).take(4) {
                        *b = rng.gen();
                    }
                }
                _ => {
                    let i = rng.gen_range(0..bytes.len());
                    let junk: Vec<u8> = (0..rng.gen_range(1..256)).map(|_| rng.gen()).collect();
                    bytes.splice(i..i, junk);
                }
            }
            let (result, peak) = decode_peak(&bytes);
            assert!(
                peak <= budget(),
                "decode allocated {peak} bytes (budget {})",
                budget()
            );
            let key = match result {
                Ok(_) => "decoded".to_string(),
                Err(code) => code.as_str().to_string(),
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }
    // Every failure is one of the two image codes, never an internal error.
    for code in outcomes.keys() {
        assert!(
            ["decoded", "IMAGE_UNDECODABLE", "IMAGE_TOO_LARGE"].contains(&code.as_str()),
            "unexpected outcome {code}: {outcomes:?}"
        );
    }
    assert!(
        outcomes.get("IMAGE_UNDECODABLE").copied().unwrap_or(0) > 100,
        "{outcomes:?}"
    );
    println!(
        "outcomes over {} mutated inputs: {outcomes:?}",
        seeds.len() * 400
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let prefixes: [&[u8]; 7] = [
        b"",
        b"\xFF\xD8\xFF",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"GIF89a",
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        b"\0\0\0\x18ftypavif\0\0\0\0mif1avif",
    ];
    for i in 0..2_000 {
        let mut bytes = prefixes[i % prefixes.len()].to_vec();
        bytes.extend((0..rng.gen_range(0..2048)).map(|_| rng.gen::<u8>()));
        let (result, peak) = decode_peak(&bytes);
        assert!(peak <= budget());
        if let Err(code) = result {
            assert!(matches!(
                code,
                ErrorCode::ImageUndecodable | ErrorCode::ImageTooLarge
            ));
        }
    }
}

#[test]
fn forged_huge_dimensions_are_refused_cheaply() {
    // A valid PNG whose IHDR claims 40000 x 40000 (1.6 gigapixels).
    let png = facepass_synth::event_photo(2, 64, 64, &[], (10, 10)).png();
    let mut forged = png.clone();
    forged[16..20].copy_from_slice(&40_000u32.to_be_bytes());
    forged[20..24].copy_from_slice(&40_000u32.to_be_bytes());
    let (result, peak) = decode_peak(&forged);
    assert!(
        matches!(
            result,
            Err(ErrorCode::ImageTooLarge) | Err(ErrorCode::ImageUndecodable)
        ),
        "{result:?}"
    );
    assert!(peak < 1024 * 1024, "refusal still allocated {peak} bytes");
}
