//! The image formats FacePass accepts, recognised by their first bytes: one
//! list for the detector (which decoder to use) and the gateway (the content
//! type it serves an original photo with).

/// The media type of an encoded image FacePass can decode, from its magic
/// bytes, or `None`. HEIF-family files are ISO-BMFF with an `ftyp` box whose
/// major brand is a still-image brand; videos (`isom`, `qt  `, ...) are not.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"\x89PNG") {
        return Some("image/png");
    }
    if bytes.len() < 12 {
        return None;
    }
    if &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if &bytes[4..8] != b"ftyp" {
        return None;
    }
    match &bytes[8..12] {
        b"avif" | b"avis" => Some("image/avif"),
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs" => {
            Some("image/heic")
        }
        b"mif1" | b"msf1" => Some("image/heif"),
        _ => None,
    }
}

/// Whether `bytes` are a HEIC/HEIF or AVIF file (decoded with libheif).
pub fn is_heif_family(bytes: &[u8]) -> bool {
    matches!(
        image_type(bytes),
        Some("image/heic" | "image/heif" | "image/avif")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bmff(brand: &[u8; 4]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 24];
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(brand);
        b.extend_from_slice(&[0; 12]);
        b
    }

    #[test]
    fn formats_follow_the_magic_bytes() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(&bmff(b"heic")), Some("image/heic"));
        assert_eq!(image_type(&bmff(b"heix")), Some("image/heic"));
        assert_eq!(image_type(&bmff(b"mif1")), Some("image/heif"));
        assert_eq!(image_type(&bmff(b"avif")), Some("image/avif"));
        for brand in [b"heic", b"heix", b"mif1", b"avif"] {
            assert!(is_heif_family(&bmff(brand)));
        }
        // An MP4 video and a QuickTime movie are ISO-BMFF too, not images.
        for brand in [b"isom", b"qt  ", b"mp42"] {
            assert_eq!(image_type(&bmff(brand)), None);
            assert!(!is_heif_family(&bmff(brand)));
        }
        assert_eq!(image_type(b"ftypheic"), None);
        assert_eq!(image_type(b"hello"), None);
        assert!(!is_heif_family(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0, 0, 0, 0, 0
        ]));
    }
}
