//! In-memory copies of busy events, for exact searches without PostgreSQL.
//!
//! Guests of one event search in bursts (everyone after the wedding opens
//! the same link), and an exact pgvector scan costs ~0.4 µs per face on a
//! small server: ~20 ms for 50,000 faces. A float32 copy of the event's
//! embeddings in this process is scanned in a few milliseconds with SIMD
//! dot products, and stays exact (float32, like the reference).
//!
//! PostgreSQL stays the only source of truth. Every write bumps the event's
//! `version` in `faces.events`; each search reads that row anyway (studio,
//! model, strategy), and a copy is used only when its version is the row's,
//! so a search never sees faces that were deleted ("forget me") or misses
//! faces that were added. A stale or missing copy is (re)loaded in the
//! background while searches take the SQL path. Copies are bounded by a
//! memory budget and evicted least-recently-used.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Loads of one event start at most this often: while an event is being
/// indexed every write retires its copy, and reloading after each would
/// double the database's work for nothing. A load asked for sooner is
/// scheduled for the end of the cooldown (and then reads the latest
/// version).
pub const RELOAD_COOLDOWN: Duration = Duration::from_secs(5);

/// The faces of one event at one version, embeddings row-major.
pub struct EventMatrix {
    pub version: i64,
    pub dim: usize,
    pub photo_ids: Vec<Uuid>,
    pub face_indexes: Vec<i32>,
    pub bboxes: Vec<[f32; 4]>,
    pub embeddings: Vec<f32>,
    last_used: AtomicU64,
}

impl EventMatrix {
    pub fn new(
        version: i64,
        dim: usize,
        photo_ids: Vec<Uuid>,
        face_indexes: Vec<i32>,
        bboxes: Vec<[f32; 4]>,
        embeddings: Vec<f32>,
    ) -> Self {
        assert_eq!(photo_ids.len() * dim, embeddings.len());
        assert_eq!(photo_ids.len(), face_indexes.len());
        assert_eq!(photo_ids.len(), bboxes.len());
        EventMatrix {
            version,
            dim,
            photo_ids,
            face_indexes,
            bboxes,
            embeddings,
            last_used: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.photo_ids.len()
    }

    /// Bytes held (embeddings dominate).
    pub fn bytes(&self) -> usize {
        self.embeddings.len() * 4 + self.len() * (16 + 4 + 16)
    }

    /// For each face with a similarity of at least `floor` to at least one
    /// query: (row, similarity to each query). Splits large events over
    /// the machine's cores.
    pub fn scan(&self, queries: &[Vec<f32>], floor: f32) -> Vec<(usize, Vec<f32>)> {
        let n = self.len();
        let threads = std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
            .min(n / 16_384)
            .max(1);
        if threads == 1 {
            return self.scan_rows(0, n, queries, floor);
        }
        let step = n.div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    let (from, to) = (t * step, ((t + 1) * step).min(n));
                    s.spawn(move || self.scan_rows(from, to, queries, floor))
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("scan thread panicked"))
                .collect()
        })
    }

    fn scan_rows(
        &self,
        from: usize,
        to: usize,
        queries: &[Vec<f32>],
        floor: f32,
    ) -> Vec<(usize, Vec<f32>)> {
        let mut out = Vec::new();
        let mut sims = vec![0f32; queries.len()];
        for row in from..to {
            let v = &self.embeddings[row * self.dim..(row + 1) * self.dim];
            let mut any = false;
            for (s, q) in sims.iter_mut().zip(queries) {
                *s = dot(v, q);
                any |= *s >= floor;
            }
            if any {
                out.push((row, sims.clone()));
            }
        }
        out
    }
}

/// Dot product of two equally long slices, with AVX2+FMA where the CPU has
/// them (checked once), portable otherwise.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports both features (checked just above).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// 16 independent sums: the compiler keeps them in vector registers.
#[inline(always)]
fn dot_lanes<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        sum += x * y;
    }
    sum
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<true>(a, b)
}

/// The copies held, within `max_bytes`.
pub struct EventCache {
    max_bytes: usize,
    /// Events with fewer faces are not copied (their SQL scan is fast).
    pub min_faces: i64,
    inner: Mutex<Inner>,
    clock: AtomicU64,
}

#[derive(Default)]
struct Inner {
    events: HashMap<Uuid, Arc<EventMatrix>>,
    loading: HashSet<Uuid>,
    last_load: HashMap<Uuid, Instant>,
    bytes: usize,
}

impl EventCache {
    pub fn new(max_bytes: usize, min_faces: i64) -> Self {
        EventCache {
            max_bytes,
            min_faces,
            inner: Mutex::new(Inner::default()),
            clock: AtomicU64::new(1),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// The copy of `event_id` at exactly `version`, if held.
    pub fn get(&self, event_id: Uuid, version: i64) -> Option<Arc<EventMatrix>> {
        let inner = self.inner.lock().expect("cache lock");
        let m = inner.events.get(&event_id)?;
        if m.version != version {
            return None;
        }
        m.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(m.clone())
    }

    /// Claims the next load of `event_id`: `None` when one is already
    /// under way or scheduled, otherwise how long to wait before starting
    /// it (zero, or the rest of the cooldown since the last load began).
    pub fn begin_load(&self, event_id: Uuid, cooldown: Duration) -> Option<Duration> {
        let mut inner = self.inner.lock().expect("cache lock");
        if !inner.loading.insert(event_id) {
            return None;
        }
        let now = Instant::now();
        let delay = inner.last_load.get(&event_id).map_or(Duration::ZERO, |t| {
            cooldown.saturating_sub(now.saturating_duration_since(*t))
        });
        inner
            .last_load
            .retain(|_, t| now.saturating_duration_since(*t) < cooldown);
        inner.last_load.insert(event_id, now + delay);
        Some(delay)
    }

    pub fn end_load(&self, event_id: Uuid) {
        self.inner
            .lock()
            .expect("cache lock")
            .loading
            .remove(&event_id);
    }

    /// Keeps `matrix` (replacing an older copy), evicting the least
    /// recently used copies beyond the budget. A copy larger than the whole
    /// budget is not kept.
    pub fn insert(&self, event_id: Uuid, matrix: EventMatrix) -> bool {
        let size = matrix.bytes();
        if size > self.max_bytes {
            return false;
        }
        matrix.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut inner = self.inner.lock().expect("cache lock");
        if let Some(old) = inner.events.insert(event_id, Arc::new(matrix)) {
            inner.bytes -= old.bytes();
        }
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(victim) = inner
                .events
                .iter()
                .filter(|(id, _)| **id != event_id)
                .min_by_key(|(_, m)| m.last_used.load(Ordering::Relaxed))
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(m) = inner.events.remove(&victim) {
                inner.bytes -= m.bytes();
            }
        }
        true
    }

    /// Drops the copy of a deleted event.
    pub fn remove(&self, event_id: Uuid) {
        let mut inner = self.inner.lock().expect("cache lock");
        if let Some(m) = inner.events.remove(&event_id) {
            inner.bytes -= m.bytes();
        }
    }

    /// (events held, bytes held).
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("cache lock");
        (inner.events.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(version: i64, rows: usize, dim: usize, seed: u32) -> EventMatrix {
        let mut x = seed.wrapping_mul(2654435761).max(1);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) - 0.5
        };
        let embeddings: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
        EventMatrix::new(
            version,
            dim,
            (0..rows).map(|_| Uuid::new_v4()).collect(),
            (0..rows as i32).collect(),
            vec![[0.0; 4]; rows],
            embeddings,
        )
    }

    #[test]
    fn simd_dot_matches_a_plain_sum() {
        for len in [0usize, 1, 15, 16, 17, 512, 515] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - plain).abs() < 1e-4, "len {len}");
            assert!(
                (dot_portable(&a, &b) as f64 - plain).abs() < 1e-4,
                "len {len}"
            );
        }
    }

    #[test]
    fn scan_finds_exactly_the_rows_above_the_floor_in_every_split() {
        // 40,000 rows: split over threads where the machine has several.
        let m = matrix(1, 40_000, 32, 7);
        let q: Vec<f32> = m.embeddings[5 * 32..6 * 32].to_vec();
        let q2: Vec<f32> = m.embeddings[39_999 * 32..].to_vec();
        let floor = 0.6;
        let mut want = Vec::new();
        for row in 0..m.len() {
            let v = &m.embeddings[row * 32..(row + 1) * 32];
            let (s1, s2) = (dot(v, &q), dot(v, &q2));
            if s1 >= floor || s2 >= floor {
                want.push(row);
            }
        }
        let got: Vec<usize> = m
            .scan(&[q, q2], floor)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert!(got.contains(&5) && got.contains(&39_999));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, want);
    }

    #[test]
    fn versions_must_match_and_the_budget_evicts_least_recently_used() {
        let one = matrix(3, 100, 8, 1);
        let size = one.bytes();
        let cache = EventCache::new(size * 2 + size / 2, 0);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(cache.insert(a, one));
        assert!(cache.get(a, 3).is_some());
        assert!(cache.get(a, 4).is_none(), "a newer version in the database");
        assert!(cache.insert(b, matrix(1, 100, 8, 2)));
        cache.get(a, 3); // a is now more recent than b
        assert!(cache.insert(c, matrix(1, 100, 8, 3)));
        assert_eq!(cache.usage().0, 2);
        assert!(cache.get(b, 1).is_none(), "b was least recently used");
        assert!(cache.get(a, 3).is_some() && cache.get(c, 1).is_some());
        cache.remove(a);
        assert_eq!(cache.usage(), (1, size));
        // Larger than the whole budget: never kept.
        assert!(!cache.insert(a, matrix(1, 1000, 8, 4)));
        let none = Duration::ZERO;
        assert_eq!(cache.begin_load(a, none), Some(Duration::ZERO));
        assert_eq!(cache.begin_load(a, none), None, "one load at a time");
        cache.end_load(a);
        assert_eq!(cache.begin_load(a, none), Some(Duration::ZERO));
        cache.end_load(a);
        let minute = Duration::from_secs(60);
        let delay = cache.begin_load(a, minute).expect("scheduled");
        assert!(
            delay > Duration::from_secs(59),
            "waits out the cooldown: {delay:?}"
        );
        assert_eq!(cache.begin_load(a, minute), None, "already scheduled");
        assert_eq!(
            cache.begin_load(b, minute),
            Some(Duration::ZERO),
            "other events do not wait"
        );
    }
}
