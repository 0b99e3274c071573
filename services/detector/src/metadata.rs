//! What a photo file says about itself besides its pixels: the media type
//! (from the first bytes) and the capture time from EXIF
//! (`DateTimeOriginal`, else `DateTime`), with `OffsetTimeOriginal` applied
//! when the camera wrote one and read as UTC when it did not.
//!
//! The EXIF block comes from the image crate's decoder for JPEG, PNG and
//! WebP (only the headers are read); HEIC/HEIF and AVIF carry EXIF as a
//! separate item and report no capture time yet. The TIFF structure is read
//! with bounds checks on every offset: a broken block is no time, never an
//! error.

use std::io::Cursor;
use std::time::SystemTime;

use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use image::ImageDecoder;

/// The media type and capture time of an encoded photo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFacts {
    pub content_type: Option<String>,
    pub captured_at: Option<SystemTime>,
}

pub fn read(bytes: &[u8]) -> FileFacts {
    let content_type = facepass_core::media::image_type(bytes);
    let captured_at = match content_type {
        Some("image/jpeg" | "image/png" | "image/webp") => {
            exif_block(bytes).as_deref().and_then(capture_time)
        }
        _ => None,
    };
    FileFacts {
        content_type: content_type.map(str::to_string),
        captured_at,
    }
}

/// The raw EXIF (TIFF) block, when the file has one.
fn exif_block(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    decoder.exif_metadata().ok().flatten()
}

const TAG_DATE_TIME: u16 = 0x0132;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_DATE_TIME_ORIGINAL: u16 = 0x9003;
const TAG_OFFSET_TIME_ORIGINAL: u16 = 0x9011;
const TYPE_ASCII: u16 = 2;
const TYPE_LONG: u16 = 4;

/// A little TIFF reader: byte order and bounds-checked reads.
struct Tiff<'a> {
    data: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        let little = match data.get(0..4)? {
            [b'I', b'I', 42, 0] => true,
            [b'M', b'M', 0, 42] => false,
            _ => return None,
        };
        Some(Tiff { data, little })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// The entry `tag` of the IFD at `ifd`: (type, count, value offset field).
    fn entry(&self, ifd: usize, tag: u16) -> Option<(u16, u32, usize)> {
        let count = self.u16_at(ifd)? as usize;
        (0..count.min(512)).find_map(|i| {
            let at = ifd + 2 + i * 12;
            (self.u16_at(at)? == tag).then_some(())?;
            Some((self.u16_at(at + 2)?, self.u32_at(at + 4)?, at + 8))
        })
    }

    /// An ASCII value, without its NUL and surrounding spaces.
    fn ascii(&self, ifd: usize, tag: u16) -> Option<&'a str> {
        let (kind, count, field) = self.entry(ifd, tag)?;
        if kind != TYPE_ASCII || count == 0 || count > 64 {
            return None;
        }
        let start = if count <= 4 {
            field
        } else {
            self.u32_at(field)? as usize
        };
        let raw = self.data.get(start..start.checked_add(count as usize)?)?;
        let text = std::str::from_utf8(raw).ok()?;
        Some(text.trim_end_matches('\0').trim())
    }

    fn long(&self, ifd: usize, tag: u16) -> Option<u32> {
        let (kind, _, field) = self.entry(ifd, tag)?;
        (kind == TYPE_LONG).then_some(())?;
        self.u32_at(field)
    }
}

/// The capture time in a TIFF-structured EXIF block.
pub fn capture_time(exif: &[u8]) -> Option<SystemTime> {
    let tiff = Tiff::new(exif)?;
    let ifd0 = tiff.u32_at(4)? as usize;
    let sub = tiff.long(ifd0, TAG_EXIF_IFD).map(|o| o as usize);
    let (text, offset) = match sub.and_then(|s| tiff.ascii(s, TAG_DATE_TIME_ORIGINAL)) {
        Some(text) => (
            text,
            sub.and_then(|s| tiff.ascii(s, TAG_OFFSET_TIME_ORIGINAL)),
        ),
        None => (tiff.ascii(ifd0, TAG_DATE_TIME)?, None),
    };
    let local = NaiveDateTime::parse_from_str(text, "%Y:%m:%d %H:%M:%S").ok()?;
    let offset = offset
        .and_then(parse_offset)
        .unwrap_or(FixedOffset::east_opt(0)?);
    let at = offset.from_local_datetime(&local).single()?;
    Some(at.into())
}

/// `+03:00` / `-05:30` as a fixed offset.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepass_synth::{exif_tiff, with_capture_time};

    fn utc(text: &str) -> SystemTime {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn date_time_original_wins_and_its_offset_applies() {
        let block = exif_tiff(
            Some("2026:06:20 15:30:00"),
            Some("+03:00"),
            "2026:07:01 09:00:00",
        );
        assert_eq!(capture_time(&block), Some(utc("2026-06-20T12:30:00Z")));
        let block = exif_tiff(Some("2026:06:20 15:30:00"), None, "2026:07:01 09:00:00");
        assert_eq!(capture_time(&block), Some(utc("2026-06-20T15:30:00Z")));
    }

    #[test]
    fn date_time_is_the_fallback() {
        let block = exif_tiff(None, None, "2026:07:01 09:00:00");
        assert_eq!(capture_time(&block), Some(utc("2026-07-01T09:00:00Z")));
    }

    #[test]
    fn broken_blocks_are_no_time() {
        let good = exif_tiff(Some("2026:06:20 15:30:00"), None, "2026:07:01 09:00:00");
        for cut in 0..good.len() {
            // Every truncation is read without a panic or an out-of-bounds read.
            let _ = capture_time(&good[..cut]);
        }
        assert_eq!(capture_time(b"II\x2a\x00\xff\xff\xff\xff"), None);
        assert_eq!(capture_time(b"not tiff at all"), None);
        let zeros = exif_tiff(Some("0000:00:00 00:00:00"), None, "    ");
        assert_eq!(capture_time(&zeros), None);
    }

    #[test]
    fn a_jpeg_with_exif_reports_its_time_and_type() {
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 200]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        let with_exif = with_capture_time(&jpeg, "2025:12:31 23:59:59", Some("-05:00"));
        let facts = read(&with_exif);
        assert_eq!(facts.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(facts.captured_at, Some(utc("2026-01-01T04:59:59Z")));
        let plain = read(&jpeg);
        assert_eq!(plain.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(plain.captured_at, None);
        assert_eq!(read(b"GIF89a....").content_type, None);
    }
}
