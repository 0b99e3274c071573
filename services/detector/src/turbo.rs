//! DCT-scaled JPEG decoding through libjpeg-turbo's TurboJPEG API, Debian's
//! `libturbojpeg0` (2.1), loaded at run time like libheif ([`crate::heif`]):
//! the detector builds and runs without it, and then decodes at reduced
//! scale in Rust (`jpeg-decoder`), which is slower.
//!
//! Only the decoding itself is done here. The caller has already read the
//! header in Rust (size, limits, pixel format, EXIF orientation); anything
//! this path does not take (CMYK, an error or a warning from the library)
//! gives `None`, and the caller falls back to a path that reports errors.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::OnceLock;

/// The shared object to load; Debian's `libturbojpeg0` installs it.
pub const LIBRARY: &str = "libturbojpeg.so.0";

const TJPF_RGB: c_int = 0;
/// `TJFLAG_STOPONWARNING`: a warning (a truncated or corrupt stream) is
/// an error here, so the caller's full decoder reports it.
const TJFLAG_STOPONWARNING: c_int = 8192;
const TJCS_RGB: c_int = 0;
const TJCS_YCBCR: c_int = 1;
const TJCS_GRAY: c_int = 2;

struct Api {
    init_decompress: unsafe extern "C" fn() -> *mut c_void,
    header: unsafe extern "C" fn(
        *mut c_void,
        *const u8,
        c_ulong,
        *mut c_int,
        *mut c_int,
        *mut c_int,
        *mut c_int,
    ) -> c_int,
    decompress: unsafe extern "C" fn(
        *mut c_void,
        *const u8,
        c_ulong,
        *mut u8,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
    ) -> c_int,
    error_text: unsafe extern "C" fn(*mut c_void) -> *mut c_char,
    destroy: unsafe extern "C" fn(*mut c_void) -> c_int,
    // Keeps the function pointers above valid; never unloaded.
    _library: libloading::Library,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn load(path: &str) -> Result<Api, String> {
    // SAFETY: libturbojpeg has no initialisers with preconditions.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {path}: {e}"))?;
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: the signatures above are TurboJPEG 2.x's (turbojpeg.h,
            // unchanged since 1.4 for these functions); the pointer stays
            // valid while `library` lives, as long as the `Api`.
            unsafe { crate::heif::symbol(&library, path, $name)? }
        }};
    }
    Ok(Api {
        init_decompress: sym!("tjInitDecompress"),
        header: sym!("tjDecompressHeader3"),
        decompress: sym!("tjDecompress2"),
        error_text: sym!("tjGetErrorStr2"),
        destroy: sym!("tjDestroy"),
        _library: library,
    })
}

fn api() -> Option<&'static Api> {
    API.get_or_init(|| load(LIBRARY)).as_ref().ok()
}

/// libturbojpeg's availability, or why it cannot be used; for the startup
/// log.
pub fn status() -> Result<(), String> {
    API.get_or_init(|| load(LIBRARY))
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

/// One decompressor, destroyed on every path out.
struct Handle<'a> {
    api: &'a Api,
    raw: *mut c_void,
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from tjInitDecompress and is destroyed once.
        unsafe { (self.api.destroy)(self.raw) };
    }
}

impl Handle<'_> {
    fn error(&self) -> String {
        // SAFETY: the handle is alive; the text is owned by it (or static).
        let text = unsafe { (self.api.error_text)(self.raw) };
        if text.is_null() {
            return "unknown error".into();
        }
        // SAFETY: NUL-terminated, alive while the handle is.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Decodes `bytes` (a JPEG whose header the caller has checked:
/// `width` x `height`, as stored, before orientation) to RGB at
/// `1/denominator` scale (2, 4 or 8): the image of `ceil(width/d)` x
/// `ceil(height/d)` pixels, each the IDCT of its block at that scale.
/// `None` when the library is missing, the stream is not what the header
/// said, is CMYK, or decodes with any error or warning.
pub fn decode_scaled(
    bytes: &[u8],
    (width, height): (u32, u32),
    denominator: u32,
) -> Option<(Vec<u8>, u32, u32)> {
    let api = api()?;
    if !matches!(denominator, 2 | 4 | 8) {
        return None;
    }
    // SAFETY: tjInitDecompress has no preconditions; null on failure.
    let raw = unsafe { (api.init_decompress)() };
    if raw.is_null() {
        return None;
    }
    let handle = Handle { api, raw };
    let (mut w, mut h, mut subsampling, mut colorspace) = (0, 0, 0, 0);
    // SAFETY: `bytes` is valid for its length; the out-pointers are ours.
    let read = unsafe {
        (api.header)(
            handle.raw,
            bytes.as_ptr(),
            bytes.len() as c_ulong,
            &mut w,
            &mut h,
            &mut subsampling,
            &mut colorspace,
        )
    };
    if read != 0
        || (w as u32, h as u32) != (width, height)
        || !matches!(colorspace, TJCS_RGB | TJCS_YCBCR | TJCS_GRAY)
    {
        return None;
    }
    let (sw, sh) = (width.div_ceil(denominator), height.div_ceil(denominator));
    let mut pixels = vec![0u8; sw as usize * sh as usize * 3];
    // SAFETY: `pixels` holds sw x sh RGB pixels with a pitch of sw * 3;
    // TurboJPEG picks the largest scaling factor whose result fits in sw x
    // sh, which for these sizes is exactly 1/denominator.
    let result = unsafe {
        (api.decompress)(
            handle.raw,
            bytes.as_ptr(),
            bytes.len() as c_ulong,
            pixels.as_mut_ptr(),
            sw as c_int,
            (sw * 3) as c_int,
            sh as c_int,
            TJPF_RGB,
            TJFLAG_STOPONWARNING,
        )
    };
    if result != 0 {
        tracing::debug!(error = %handle.error(), "turbojpeg could not decode; falling back");
        return None;
    }
    Some((pixels, sw, sh))
}
