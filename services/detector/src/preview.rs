//! Web-format previews of an event photo (a ~400 px thumbnail for the
//! guest's grid, a ~1600 px screen-size view), rendered from the image the
//! detector has already decoded for indexing, so a HEIC, AVIF or 24 MP
//! original costs no second decode. JPEG: every browser shows it.

use facepass_core::Error;
use image::imageops::FilterType;
use image::RgbImage;

/// The smallest and largest preview side the detector renders.
pub const MIN_SIDE: u32 = 64;
pub const MAX_SIDE: u32 = 4096;
/// At most this many previews per photo.
pub const MAX_PREVIEWS: usize = 4;
/// JPEG quality of the previews: no visible loss on a screen at about a
/// tenth of the original's bytes.
pub const QUALITY: u8 = 82;

/// One rendered preview.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub max_side: u32,
    pub width: u32,
    pub height: u32,
    pub jpeg: bytes::Bytes,
}

/// The size that fits `max_side`, keeping the aspect; never enlarged.
pub fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side {
        return (width, height);
    }
    let scale = max_side as f64 / long as f64;
    let w = ((width as f64 * scale).round() as u32).max(1);
    let h = ((height as f64 * scale).round() as u32).max(1);
    (w, h)
}

/// Checks the sides asked for (INVALID_ARGUMENT names the bad one).
pub fn check(sides: &[u32]) -> Result<(), Error> {
    if sides.len() > MAX_PREVIEWS {
        return Err(Error::invalid_field(
            "previews",
            format!("at most {MAX_PREVIEWS} previews, not {}", sides.len()),
        ));
    }
    for (i, side) in sides.iter().enumerate() {
        if !(MIN_SIDE..=MAX_SIDE).contains(side) {
            return Err(Error::invalid_field(
                format!("previews[{i}].max_side"),
                format!("max_side is {MIN_SIDE} to {MAX_SIDE}, not {side}"),
            ));
        }
    }
    Ok(())
}

/// Renders a JPEG of `image` for each side, in order. The larger previews
/// are made first and each smaller one is scaled from the smallest one made
/// so far that is still larger than it, which keeps the cost of a thumbnail
/// near nothing.
pub fn render(image: &RgbImage, sides: &[u32]) -> Result<Vec<Encoded>, Error> {
    check(sides)?;
    let mut order: Vec<usize> = (0..sides.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sides[i]));
    let mut made: Vec<Option<Encoded>> = vec![None; sides.len()];
    let mut source: Option<RgbImage> = None;
    for i in order {
        let from = source.as_ref().unwrap_or(image);
        let (w, h) = fit(image.width(), image.height(), sides[i]);
        let scaled = if (w, h) == from.dimensions() {
            from.clone()
        } else {
            image::imageops::resize(from, w, h, FilterType::Triangle)
        };
        let mut jpeg = Vec::with_capacity((w * h / 4) as usize);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
            .encode_image(&scaled)
            .map_err(|e| Error::internal(format!("encoding a preview: {e}")))?;
        made[i] = Some(Encoded {
            max_side: sides[i],
            width: w,
            height: h,
            jpeg: jpeg.into(),
        });
        source = Some(scaled);
    }
    Ok(made
        .into_iter()
        .map(|p| p.expect("each side rendered"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_fit_their_side_and_are_never_enlarged() {
        assert_eq!(fit(6000, 4000, 1600), (1600, 1067));
        assert_eq!(fit(4000, 6000, 400), (267, 400));
        assert_eq!(fit(300, 200, 400), (300, 200));
        assert_eq!(fit(10_000, 1, 400), (400, 1));
    }

    #[test]
    fn each_side_is_rendered_in_the_order_asked() {
        let image = RgbImage::from_fn(2000, 1000, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let out = render(&image, &[400, 1600]).unwrap();
        assert_eq!((out[0].width, out[0].height), (400, 200));
        assert_eq!((out[1].width, out[1].height), (1600, 800));
        for p in &out {
            let decoded = image::load_from_memory(&p.jpeg).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (p.width, p.height));
        }
        assert!(out[0].jpeg.len() < out[1].jpeg.len());
    }

    #[test]
    fn bad_sides_are_refused_by_name() {
        assert!(check(&[400, 1600]).is_ok());
        let err = check(&[400, 10]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("previews[1].max_side"));
        assert!(check(&[400; 5]).is_err());
        assert!(render(&RgbImage::new(10, 10), &[5000]).is_err());
    }
}
