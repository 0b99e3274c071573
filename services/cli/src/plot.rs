//! A histogram of same-person and different-person similarities, with the
//! thresholds as vertical lines, drawn as a PNG with no plotting library:
//! the `image` crate for pixels and an 8x8 bitmap font (public domain, the
//! IBM PC's) for the labels.

use image::{Rgb, RgbImage};

use crate::calibrate::Distributions;

const W: u32 = 960;
const H: u32 = 540;
/// The plot area inside the margins.
const LEFT: u32 = 70;
const RIGHT: u32 = 30;
const TOP: u32 = 60;
const BOTTOM: u32 = 70;
const BIN: f32 = 0.02;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([40, 40, 40]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Different people: blue; the same person: orange (colour-blind safe pair).
const DIFFERENT: Rgb<u8> = Rgb([0, 114, 178]);
const SAME: Rgb<u8> = Rgb([230, 159, 0]);
const LINES: [Rgb<u8>; 2] = [Rgb([0, 158, 115]), Rgb([204, 121, 167])];

fn blend(img: &mut RgbImage, x: u32, y: u32, c: Rgb<u8>, alpha: f32) {
    if x >= W || y >= H {
        return;
    }
    let p = img.get_pixel_mut(x, y);
    for i in 0..3 {
        p.0[i] = (p.0[i] as f32 * (1.0 - alpha) + c.0[i] as f32 * alpha).round() as u8;
    }
}

fn rect(img: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, c: Rgb<u8>, alpha: f32) {
    for y in y0.min(y1)..y0.max(y1) {
        for x in x0.min(x1)..x0.max(x1) {
            blend(img, x, y, c, alpha);
        }
    }
}

/// Text at (x, y), top left, each font pixel drawn `scale` x `scale`.
fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, c: Rgb<u8>, scale: u32) {
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or(font8x8::legacy::BASIC_LEGACY[b'?' as usize]);
        let gx = x + i as u32 * 8 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    rect(
                        img,
                        gx + col * scale,
                        y + row as u32 * scale,
                        gx + (col + 1) * scale,
                        y + (row as u32 + 1) * scale,
                        c,
                        1.0,
                    );
                }
            }
        }
    }
}

fn text_width(s: &str, scale: u32) -> u32 {
    s.chars().count() as u32 * 8 * scale
}

/// Share of each distribution per bin over [lo, hi).
fn bins(values: &[f32], lo: f32, n: usize) -> Vec<f32> {
    let mut counts = vec![0f32; n];
    for &v in values {
        let i = (((v - lo) / BIN).floor().max(0.0) as usize).min(n - 1);
        counts[i] += 1.0;
    }
    let total = values.len().max(1) as f32;
    counts.iter().map(|c| c / total).collect()
}

/// The PNG bytes. Each distribution is drawn as shares of its own pairs, so
/// a few same-person pairs stay visible beside many different-person ones.
pub fn histogram(
    d: &Distributions,
    thresholds: &[(&str, f32)],
    title: &str,
) -> anyhow::Result<Vec<u8>> {
    let min = d
        .same
        .iter()
        .chain(&d.different)
        .copied()
        .fold(f32::INFINITY, f32::min);
    let lo = ((min.min(0.0) / 0.1).floor() * 0.1).max(-1.0);
    let hi = 1.0f32;
    let n = ((hi - lo) / BIN).round() as usize;
    let same = bins(&d.same, lo, n);
    let different = bins(&d.different, lo, n);
    let top = same
        .iter()
        .chain(&different)
        .copied()
        .fold(0.0f32, f32::max)
        .max(0.05);
    let top = (top / 0.05).ceil() * 0.05;

    let mut img = RgbImage::from_pixel(W, H, WHITE);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x_of = |v: f32| LEFT + ((v - lo) / (hi - lo) * pw as f32).round() as u32;
    let y_of = |share: f32| TOP + ph - (share / top * ph as f32).round() as u32;

    // Grid and axes.
    let mut share = 0.0;
    while share <= top + 1e-6 {
        let y = y_of(share);
        rect(&mut img, LEFT, y, LEFT + pw, y + 1, GRID, 1.0);
        let label = format!("{:>3.0}%", share * 100.0);
        text(
            &mut img,
            LEFT - text_width(&label, 1) - 6,
            y - 4,
            &label,
            INK,
            1,
        );
        share += if top > 0.3 { 0.1 } else { 0.05 };
    }
    let mut tick = (lo * 10.0).round() as i32;
    while tick <= 10 {
        let v = tick as f32 / 10.0;
        let x = x_of(v);
        rect(&mut img, x, TOP, x + 1, TOP + ph, GRID, 1.0);
        rect(&mut img, x, TOP + ph, x + 1, TOP + ph + 5, INK, 1.0);
        let label = format!("{v:.1}");
        text(
            &mut img,
            x - text_width(&label, 1) / 2,
            TOP + ph + 10,
            &label,
            INK,
            1,
        );
        tick += 1;
    }
    rect(&mut img, LEFT, TOP + ph, LEFT + pw, TOP + ph + 2, INK, 1.0);
    rect(&mut img, LEFT - 2, TOP, LEFT, TOP + ph + 2, INK, 1.0);

    // Bars: different people, then the same person over them.
    let bar = |i: usize| {
        (
            x_of(lo + i as f32 * BIN) + 1,
            x_of(lo + (i + 1) as f32 * BIN),
        )
    };
    for (series, colour) in [(&different, DIFFERENT), (&same, SAME)] {
        for (i, &s) in series.iter().enumerate() {
            if s > 0.0 {
                let (x0, x1) = bar(i);
                rect(
                    &mut img,
                    x0,
                    y_of(s).min(TOP + ph - 1),
                    x1,
                    TOP + ph,
                    colour,
                    0.7,
                );
            }
        }
    }

    // Thresholds.
    for (i, (name, t)) in thresholds.iter().enumerate() {
        let colour = LINES[i % LINES.len()];
        let x = x_of(*t);
        let mut y = TOP;
        while y < TOP + ph {
            rect(
                &mut img,
                x - 1,
                y,
                x + 1,
                (y + 8).min(TOP + ph),
                colour,
                1.0,
            );
            y += 12;
        }
        let label = format!("{name} {t:.2}");
        let lx = if x + 6 + text_width(&label, 1) < LEFT + pw {
            x + 6
        } else {
            x - 6 - text_width(&label, 1)
        };
        text(&mut img, lx, TOP + 6 + 14 * i as u32, &label, colour, 1);
    }

    // Title, axis label, legend.
    let scale = if text_width(title, 2) <= W - LEFT - RIGHT {
        2
    } else {
        1
    };
    text(&mut img, LEFT, 16 + 4 * (2 - scale), title, INK, scale);
    let axis = "cosine similarity";
    text(
        &mut img,
        LEFT + (pw - text_width(axis, 1)) / 2,
        TOP + ph + 30,
        axis,
        INK,
        1,
    );
    let legend = [
        (
            DIFFERENT,
            format!("different people ({} pairs)", d.different.len()),
        ),
        (SAME, format!("same person ({} pairs)", d.same.len())),
    ];
    let mut lx = LEFT;
    let ly = H - 22;
    for (colour, label) in legend {
        rect(&mut img, lx, ly, lx + 14, ly + 10, colour, 0.7);
        text(&mut img, lx + 20, ly + 1, &label, INK, 1);
        lx += 20 + text_width(&label, 1) + 30;
    }
    text(
        &mut img,
        lx,
        ly + 1,
        "bars: share of each kind's pairs",
        INK,
        1,
    );

    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_a_png_with_both_colours_and_the_lines() {
        let d = Distributions {
            same: vec![0.62, 0.7, 0.75, 0.9],
            different: vec![-0.1, 0.0, 0.05, 0.1, 0.12, 0.3],
        };
        let png = histogram(&d, &[("match", 0.57), ("possible", 0.45)], "test").unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W, H));
        let has = |c: Rgb<u8>| img.pixels().any(|p| *p == c);
        assert!(has(LINES[0]) && has(LINES[1]), "threshold lines drawn");
        // Bars are blended over white at 0.7: neither pure colour nor white.
        let near = |p: &Rgb<u8>, c: Rgb<u8>| {
            (0..3).all(|i| (p.0[i] as i32 - (c.0[i] as f32 * 0.7 + 255.0 * 0.3) as i32).abs() <= 1)
        };
        assert!(img.pixels().any(|p| near(p, SAME)), "same-person bars");
        assert!(
            img.pixels().any(|p| near(p, DIFFERENT)),
            "different-person bars"
        );
        // The 0.57 line lies right of the 0.45 line.
        let column = |c: Rgb<u8>| {
            (0..W)
                .find(|&x| (TOP..TOP + 4).any(|y| *img.get_pixel(x, y) == c))
                .unwrap()
        };
        assert!(column(LINES[0]) > column(LINES[1]));
    }

    #[test]
    fn bins_are_shares_and_clamp_the_ends() {
        let b = bins(&[-0.5, 0.0, 0.01, 0.99, 1.0], 0.0, 50);
        assert_eq!(b.len(), 50);
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((b[0] - 0.6).abs() < 1e-6, "{b:?}");
        assert!((b[49] - 0.4).abs() < 1e-6);
    }
}
