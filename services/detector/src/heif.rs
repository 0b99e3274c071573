//! HEIC/HEIF (iPhone and most Android phones) and AVIF decoding through
//! libheif, Debian's `libheif1` (1.15: HEVC by libde265, AV1 by dav1d/aom).
//!
//! The library is loaded at run time (`dlopen`), not linked: the detector
//! builds and runs without it, and a HEIC photo then gets a clear
//! `IMAGE_UNDECODABLE` that says which package to install. The limits are
//! checked on the declared size of the primary image before anything is
//! decoded, and libheif's own size limit is set to the same value. Rotation
//! and mirroring (`irot`/`imir`) are applied by libheif, which is how HEIF
//! carries orientation; HDR (10/12-bit) images come out as 8-bit RGB.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use facepass_core::{Error, ErrorCode};
use image::RgbImage;

use crate::config::ImageLimits;

/// The shared object to load; Debian's `libheif1` installs it.
pub const LIBRARY: &str = "libheif.so.1";

/// `struct heif_error`, returned by value.
#[repr(C)]
#[derive(Clone, Copy)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

/// The head of `struct heif_decoding_options` (its version 2 added
/// `convert_hdr_to_8bit`); always allocated by libheif itself, so fields
/// after these may follow.
#[repr(C)]
struct DecodingOptions {
    version: u8,
    ignore_transformations: u8,
    start_progress: *mut c_void,
    on_progress: *mut c_void,
    end_progress: *mut c_void,
    progress_user_data: *mut c_void,
    convert_hdr_to_8bit: u8,
}

const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHANNEL_INTERLEAVED: c_int = 10;
const ERROR_UNSUPPORTED_FILETYPE: c_int = 3;
const ERROR_UNSUPPORTED_FEATURE: c_int = 4;
const ERROR_MEMORY: c_int = 6;
const SUBERROR_SECURITY_LIMIT: c_int = 1000;

/// The functions FacePass uses, resolved once.
struct Api {
    version: String,
    context_alloc: unsafe extern "C" fn() -> *mut c_void,
    context_free: unsafe extern "C" fn(*mut c_void),
    read_from_memory:
        unsafe extern "C" fn(*mut c_void, *const c_void, usize, *const c_void) -> HeifError,
    set_max_size: unsafe extern "C" fn(*mut c_void, c_int),
    primary_handle: unsafe extern "C" fn(*mut c_void, *mut *mut c_void) -> HeifError,
    handle_width: unsafe extern "C" fn(*const c_void) -> c_int,
    handle_height: unsafe extern "C" fn(*const c_void) -> c_int,
    handle_release: unsafe extern "C" fn(*const c_void),
    options_alloc: unsafe extern "C" fn() -> *mut DecodingOptions,
    options_free: unsafe extern "C" fn(*mut DecodingOptions),
    decode_image: unsafe extern "C" fn(
        *const c_void,
        *mut *mut c_void,
        c_int,
        c_int,
        *const DecodingOptions,
    ) -> HeifError,
    image_width: unsafe extern "C" fn(*const c_void, c_int) -> c_int,
    image_height: unsafe extern "C" fn(*const c_void, c_int) -> c_int,
    plane_readonly: unsafe extern "C" fn(*const c_void, c_int, *mut c_int) -> *const u8,
    image_release: unsafe extern "C" fn(*const c_void),
    // Keeps the function pointers above valid; never unloaded.
    _library: libloading::Library,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn load(path: &str) -> Result<Api, String> {
    // SAFETY: libheif's initialisers only set up its plugin registry.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {path}: {e}"))?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the signatures above are libheif 1.x's C API (heif.h,
            // unchanged since 1.7); the pointer stays valid while `library`
            // lives, and it lives as long as the `Api`.
            unsafe { symbol(&library, path, $name)? }
        };
    }
    let init: unsafe extern "C" fn(*mut c_void) -> HeifError = sym!("heif_init");
    let get_version: unsafe extern "C" fn() -> *const c_char = sym!("heif_get_version");
    // SAFETY: heif_init(NULL) is reference counted and may be called once
    // per process user; heif_get_version returns a static string.
    let (init_error, version) = unsafe {
        (
            init(std::ptr::null_mut()),
            CStr::from_ptr(get_version()).to_string_lossy().into_owned(),
        )
    };
    if init_error.code != 0 {
        return Err(format!("heif_init failed: {}", message(&init_error)));
    }
    Ok(Api {
        version,
        context_alloc: sym!("heif_context_alloc"),
        context_free: sym!("heif_context_free"),
        read_from_memory: sym!("heif_context_read_from_memory_without_copy"),
        set_max_size: sym!("heif_context_set_maximum_image_size_limit"),
        primary_handle: sym!("heif_context_get_primary_image_handle"),
        handle_width: sym!("heif_image_handle_get_width"),
        handle_height: sym!("heif_image_handle_get_height"),
        handle_release: sym!("heif_image_handle_release"),
        options_alloc: sym!("heif_decoding_options_alloc"),
        options_free: sym!("heif_decoding_options_free"),
        decode_image: sym!("heif_decode_image"),
        image_width: sym!("heif_image_get_width"),
        image_height: sym!("heif_image_get_height"),
        plane_readonly: sym!("heif_image_get_plane_readonly"),
        image_release: sym!("heif_image_release"),
        _library: library,
    })
}

/// The function `name` of `library` (loaded from `path`, for the error),
/// shared with [`crate::turbo`].
pub(crate) unsafe fn symbol<T: Copy>(
    library: &libloading::Library,
    path: &str,
    name: &str,
) -> Result<T, String> {
    // SAFETY: the caller names a function whose C signature is `T`.
    let symbol: libloading::Symbol<T> =
        unsafe { library.get(name.as_bytes()) }.map_err(|e| format!("{path}: {e}"))?;
    Ok(*symbol)
}

fn api() -> Result<&'static Api, Error> {
    API.get_or_init(|| load(LIBRARY)).as_ref().map_err(|why| {
        // Why libheif cannot be loaded (its path, the loader's error) is for
        // the operator: logged here and at start-up, never sent to callers.
        tracing::warn!(reason = %why, "libheif is not available; install Debian's libheif1");
        Error::new(
            ErrorCode::ImageUndecodable,
            "HEIC/HEIF and AVIF images cannot be decoded here; send JPEG, PNG or WebP",
        )
    })
}

/// libheif's version, or why it cannot be used; for the startup log.
pub fn status() -> Result<String, String> {
    API.get_or_init(|| load(LIBRARY))
        .as_ref()
        .map(|api| api.version.clone())
        .map_err(Clone::clone)
}

fn message(err: &HeifError) -> String {
    if err.message.is_null() {
        return format!("error {}.{}", err.code, err.subcode);
    }
    // SAFETY: libheif's messages are NUL-terminated and outlive the call
    // (static strings or owned by the context, which is still alive here).
    unsafe { CStr::from_ptr(err.message) }
        .to_string_lossy()
        .into_owned()
}

fn check(err: HeifError) -> Result<(), Error> {
    if err.code == 0 {
        return Ok(());
    }
    let text = message(&err);
    Err(match (err.code, err.subcode) {
        (ERROR_MEMORY, _) | (_, SUBERROR_SECURITY_LIMIT) => Error::new(
            ErrorCode::ImageTooLarge,
            format!("HEIF image exceeds the decoding limits: {text}"),
        ),
        (ERROR_UNSUPPORTED_FILETYPE | ERROR_UNSUPPORTED_FEATURE, _) => Error::new(
            ErrorCode::ImageUndecodable,
            format!("unsupported HEIF image: {text}"),
        ),
        _ => Error::new(
            ErrorCode::ImageUndecodable,
            format!("corrupt HEIF image: {text}"),
        ),
    })
}

/// Frees what libheif allocated, on every path out of [`decode`].
struct Owned<'a> {
    api: &'a Api,
    context: *mut c_void,
    handle: *mut c_void,
    options: *mut DecodingOptions,
    image: *mut c_void,
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was returned by the matching
        // libheif allocator and is released exactly once, image and handle
        // before the context they belong to.
        unsafe {
            if !self.image.is_null() {
                (self.api.image_release)(self.image);
            }
            if !self.handle.is_null() {
                (self.api.handle_release)(self.handle);
            }
            if !self.options.is_null() {
                (self.api.options_free)(self.options);
            }
            if !self.context.is_null() {
                (self.api.context_free)(self.context);
            }
        }
    }
}

/// Decodes the primary image of a HEIC/HEIF/AVIF file to 8-bit RGB, with
/// its transformations applied. The caller has checked the byte limit.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, Error> {
    let api = api()?;
    let too_large = |w: i64, h: i64| {
        Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "image is {w}x{h} ({} pixels), the limits are {} pixels and {} a side",
                w * h,
                limits.max_pixels,
                limits.max_side
            ),
        )
    };
    // SAFETY: every pointer handed to libheif is either null (defaults),
    // one it returned, or `bytes`, which outlives the context (the image
    // is copied out before `owned` is dropped).
    unsafe {
        let mut owned = Owned {
            api,
            context: (api.context_alloc)(),
            handle: std::ptr::null_mut(),
            options: std::ptr::null_mut(),
            image: std::ptr::null_mut(),
        };
        if owned.context.is_null() {
            return Err(Error::internal("libheif could not allocate a context"));
        }
        (api.set_max_size)(
            owned.context,
            limits.max_side.min(c_int::MAX as u32) as c_int,
        );
        check((api.read_from_memory)(
            owned.context,
            bytes.as_ptr().cast(),
            bytes.len(),
            std::ptr::null(),
        ))?;
        check((api.primary_handle)(owned.context, &mut owned.handle))?;
        let (w, h) = (
            (api.handle_width)(owned.handle) as i64,
            (api.handle_height)(owned.handle) as i64,
        );
        if w <= 0 || h <= 0 {
            return Err(Error::new(
                ErrorCode::ImageUndecodable,
                "image has no pixels",
            ));
        }
        let fits = |w: i64, h: i64| {
            w <= limits.max_side as i64
                && h <= limits.max_side as i64
                && (w * h) as u64 <= limits.max_pixels
        };
        if !fits(w, h) {
            return Err(too_large(w, h));
        }
        owned.options = (api.options_alloc)();
        if !owned.options.is_null() && (*owned.options).version >= 2 {
            (*owned.options).convert_hdr_to_8bit = 1;
        }
        check((api.decode_image)(
            owned.handle,
            &mut owned.image,
            COLORSPACE_RGB,
            CHROMA_INTERLEAVED_RGB,
            owned.options,
        ))?;
        let (iw, ih) = (
            (api.image_width)(owned.image, CHANNEL_INTERLEAVED) as i64,
            (api.image_height)(owned.image, CHANNEL_INTERLEAVED) as i64,
        );
        if iw <= 0 || ih <= 0 {
            return Err(Error::new(
                ErrorCode::ImageUndecodable,
                "HEIF image decoded to no pixels",
            ));
        }
        if !fits(iw, ih) {
            return Err(too_large(iw, ih));
        }
        let mut stride: c_int = 0;
        let plane = (api.plane_readonly)(owned.image, CHANNEL_INTERLEAVED, &mut stride);
        let row = iw as usize * 3;
        if plane.is_null() || (stride as i64) < row as i64 {
            return Err(Error::new(
                ErrorCode::ImageUndecodable,
                "HEIF image has no 8-bit RGB plane",
            ));
        }
        let mut rgb = Vec::with_capacity(row * ih as usize);
        for y in 0..ih as usize {
            rgb.extend_from_slice(std::slice::from_raw_parts(
                plane.add(y * stride as usize),
                row,
            ));
        }
        RgbImage::from_raw(iw as u32, ih as u32, rgb)
            .ok_or_else(|| Error::internal("HEIF plane size mismatch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_reported_not_fatal() {
        let Err(why) = load("libheif-that-does-not-exist.so.9") else {
            panic!("loaded a library that does not exist");
        };
        assert!(why.contains("libheif-that-does-not-exist"), "{why}");
    }
}
