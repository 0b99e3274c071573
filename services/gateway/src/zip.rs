//! A streaming ZIP writer for "download all": entries are stored (photos do
//! not compress), each followed by a data descriptor, so nothing has to be
//! known or held before a byte is sent; memory is one chunk at a time plus
//! 100-odd bytes per entry for the central directory. ZIP64 records are
//! added when the archive passes 4 GiB (PKWARE APPNOTE 6.3.10, 4.3.9 and
//! 4.4; every entry itself is under the upload limit, far below 4 GiB).

use bytes::{BufMut, Bytes, BytesMut};

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
/// Bit 3: sizes and CRC follow the data; bit 11: the name is UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);
/// 2.0 (data descriptors); 4.5 when ZIP64 records are present.
const VERSION: u16 = 20;
const VERSION64: u16 = 45;

/// A DOS date and time (the ZIP header's resolution: 2 seconds).
pub fn dos_time(at: chrono::DateTime<chrono::Utc>) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let year = at.year().clamp(1980, 2107) as u16;
    let date = ((year - 1980) << 9) | ((at.month() as u16) << 5) | at.day() as u16;
    let time = ((at.hour() as u16) << 11) | ((at.minute() as u16) << 5) | (at.second() as u16 / 2);
    (time, date)
}

struct Written {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
    time: u16,
    date: u16,
}

/// Builds the archive's bytes entry by entry; the caller sends what each
/// call returns, in order.
#[derive(Default)]
pub struct ZipWriter {
    offset: u64,
    entries: Vec<Written>,
    open: Option<(String, crc32fast::Hasher, u64, u64, u16, u16)>,
}

impl ZipWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The local header of the next entry.
    pub fn start(&mut self, name: &str, modified: chrono::DateTime<chrono::Utc>) -> Bytes {
        assert!(self.open.is_none(), "finish the entry first");
        let (time, date) = dos_time(modified);
        let mut b = BytesMut::with_capacity(30 + name.len());
        b.put_u32_le(LOCAL);
        b.put_u16_le(VERSION);
        b.put_u16_le(FLAGS);
        b.put_u16_le(0); // stored
        b.put_u16_le(time);
        b.put_u16_le(date);
        b.put_u32_le(0); // CRC, sizes: in the descriptor
        b.put_u32_le(0);
        b.put_u32_le(0);
        b.put_u16_le(name.len() as u16);
        b.put_u16_le(0);
        b.put_slice(name.as_bytes());
        self.open = Some((
            name.to_string(),
            crc32fast::Hasher::new(),
            0,
            self.offset,
            time,
            date,
        ));
        self.offset += b.len() as u64;
        b.freeze()
    }

    /// Accounts for a chunk of the open entry's data (sent as it is).
    pub fn data(&mut self, chunk: &[u8]) {
        let open = self.open.as_mut().expect("start an entry first");
        open.1.update(chunk);
        open.2 += chunk.len() as u64;
        self.offset += chunk.len() as u64;
    }

    /// The open entry's data descriptor.
    pub fn finish(&mut self) -> Bytes {
        let (name, hasher, size, offset, time, date) = self.open.take().expect("an open entry");
        assert!(size < u32::MAX as u64, "an entry over 4 GiB");
        let crc = hasher.finalize();
        let mut b = BytesMut::with_capacity(16);
        b.put_u32_le(DESCRIPTOR);
        b.put_u32_le(crc);
        b.put_u32_le(size as u32);
        b.put_u32_le(size as u32);
        self.offset += b.len() as u64;
        self.entries.push(Written {
            name,
            crc,
            size,
            offset,
            time,
            date,
        });
        b.freeze()
    }

    /// The central directory and the end records.
    pub fn end(mut self) -> Bytes {
        if self.open.is_some() {
            // An entry cut short is left out of the directory.
            self.open = None;
        }
        let start = self.offset;
        let mut b = BytesMut::new();
        for e in &self.entries {
            let zip64 = e.offset >= u32::MAX as u64;
            b.put_u32_le(CENTRAL);
            b.put_u16_le(if zip64 { VERSION64 } else { VERSION } | (3 << 8)); // made by: Unix
            b.put_u16_le(if zip64 { VERSION64 } else { VERSION });
            b.put_u16_le(FLAGS);
            b.put_u16_le(0);
            b.put_u16_le(e.time);
            b.put_u16_le(e.date);
            b.put_u32_le(e.crc);
            b.put_u32_le(e.size as u32);
            b.put_u32_le(e.size as u32);
            b.put_u16_le(e.name.len() as u16);
            b.put_u16_le(if zip64 { 12 } else { 0 }); // extra
            b.put_u16_le(0); // comment
            b.put_u16_le(0); // disk
            b.put_u16_le(0); // internal attributes
            b.put_u32_le(0o100644 << 16); // a regular file, rw-r--r--
            b.put_u32_le(if zip64 { u32::MAX } else { e.offset as u32 });
            b.put_slice(e.name.as_bytes());
            if zip64 {
                b.put_u16_le(0x0001);
                b.put_u16_le(8);
                b.put_u64_le(e.offset);
            }
        }
        let size = b.len() as u64;
        let count = self.entries.len() as u64;
        let zip64 = start >= u32::MAX as u64 || count >= u16::MAX as u64;
        if zip64 {
            let end64 = start + size;
            b.put_u32_le(END64);
            b.put_u64_le(44);
            b.put_u16_le(VERSION64 | (3 << 8));
            b.put_u16_le(VERSION64);
            b.put_u32_le(0);
            b.put_u32_le(0);
            b.put_u64_le(count);
            b.put_u64_le(count);
            b.put_u64_le(size);
            b.put_u64_le(start);
            b.put_u32_le(LOCATOR64);
            b.put_u32_le(0);
            b.put_u64_le(end64);
            b.put_u32_le(1);
        }
        b.put_u32_le(END);
        b.put_u16_le(0);
        b.put_u16_le(0);
        b.put_u16_le(count.min(u16::MAX as u64) as u16);
        b.put_u16_le(count.min(u16::MAX as u64) as u16);
        b.put_u32_le(size.min(u32::MAX as u64) as u32);
        b.put_u32_le(start.min(u32::MAX as u64) as u32);
        b.put_u16_le(0);
        b.freeze()
    }
}

/// A name for an entry: the caller's file name without any folder part or
/// control character, or `fallback`; made unique among `taken`.
pub fn entry_name(
    file_name: Option<&str>,
    fallback: &str,
    taken: &mut std::collections::HashSet<String>,
) -> String {
    let base: String = file_name
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_string();
    let base = if base.is_empty() {
        fallback.to_string()
    } else {
        base
    };
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (base[..i].to_string(), base[i..].to_string()),
        _ => (base.clone(), String::new()),
    };
    let mut name = base;
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{stem} ({n}){ext}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let at = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:30:04Z")
            .unwrap()
            .into();
        let mut zip = ZipWriter::new();
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend_from_slice(&zip.start(name, at));
            for chunk in data.chunks(7) {
                zip.data(chunk);
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(&zip.finish());
        }
        out.extend_from_slice(&zip.end());
        out
    }

    #[test]
    fn the_end_record_points_at_the_directory() {
        let bytes = archive(&[("a.jpg", b"hello world"), ("b.jpg", b"")]);
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], &END.to_le_bytes());
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let start = u32::from_le_bytes(end[16..20].try_into().unwrap()) as usize;
        assert_eq!(&bytes[start..start + 4], &CENTRAL.to_le_bytes());
        // The first entry's CRC is the standard CRC-32 of its bytes.
        let crc = u32::from_le_bytes(bytes[start + 16..start + 20].try_into().unwrap());
        assert_eq!(crc, 0x0d4a_1185);
    }

    #[test]
    fn names_are_plain_and_unique() {
        let mut taken = Default::default();
        assert_eq!(
            entry_name(Some("../x/IMG_1.jpg"), "p.jpg", &mut taken),
            "IMG_1.jpg"
        );
        assert_eq!(
            entry_name(Some("IMG_1.jpg"), "p.jpg", &mut taken),
            "IMG_1 (2).jpg"
        );
        assert_eq!(
            entry_name(Some("C:\\a\\IMG_1.jpg"), "p.jpg", &mut taken),
            "IMG_1 (3).jpg"
        );
        assert_eq!(entry_name(None, "p.jpg", &mut taken), "p.jpg");
        assert_eq!(entry_name(Some("\u{0}.."), "q.jpg", &mut taken), "q.jpg");
    }

    #[test]
    fn dos_time_has_two_second_resolution() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:30:05Z")
            .unwrap()
            .into();
        let (time, date) = dos_time(at);
        assert_eq!(time, (12 << 11) | (30 << 5) | 2);
        assert_eq!(date, (46 << 9) | (6 << 5) | 1);
    }
}
