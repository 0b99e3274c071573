//! Synthetic face embeddings with identity structure, for the face-store
//! tests and benchmark: each identity has a centre on the unit sphere and
//! its faces are scattered around it, as real ArcFace embeddings of one
//! person are (cosine ~0.5-0.85 to each other, ~0 to everyone else).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const DIM: usize = 512;

/// A deterministic generator of identities and their faces.
pub struct FaceGen {
    rng: StdRng,
}

impl FaceGen {
    pub fn new(seed: u64) -> Self {
        FaceGen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn gauss(&mut self) -> f32 {
        // Box-Muller.
        let u1: f64 = self.rng.gen_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = self.rng.gen();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.gen_range(lo..=hi)
    }

    /// A random unit vector: an identity's centre.
    pub fn centre(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.gauss()).collect();
        normalise(v)
    }

    /// One face of the identity at `centre`: normalise(centre + noise) with
    /// |noise|^2 drawn in [0.3, 1.2], so its cosine to the centre is
    /// 0.67-0.88 and to another face of the same person ~0.45-0.77.
    pub fn face_of(&mut self, centre: &[f32]) -> Vec<f32> {
        let spread: f32 = self.rng.gen_range(0.3f32..1.2);
        let s = (spread / DIM as f32).sqrt();
        let v: Vec<f32> = centre.iter().map(|c| c + s * self.gauss()).collect();
        normalise(v)
    }

    /// A plausible face box and landmarks.
    pub fn bbox(&mut self) -> Vec<f32> {
        let x: f32 = self.rng.gen_range(0.0..5000.0);
        let y: f32 = self.rng.gen_range(0.0..3000.0);
        let w: f32 = self.rng.gen_range(40.0..600.0);
        vec![x, y, x + w, y + w * 1.2]
    }
}

pub fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt() as f32;
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Cosine similarity in f64 (the test reference).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    d / (na.sqrt() * nb.sqrt())
}

/// The query several selfies of one person make: their normalised mean
/// (written here again on purpose: the tests' reference must not share
/// code with the store's `rank::combine`).
pub fn combine(selfies: &[Vec<f32>]) -> Vec<f32> {
    let mut mean = vec![0f32; DIM];
    for s in selfies {
        for (m, x) in mean.iter_mut().zip(s) {
            *m += x;
        }
    }
    normalise(mean)
}
