//! Load shedding of selfie searches on their expected wait (issue 16,
//! point 4): above what the detector and embedder can answer in time, a
//! guest gets 429 with Retry-After at once rather than an answer after
//! `selfie_max_wait_ms` or more.
//!
//! The expected wait of a new selfie is Little's law over what this gateway
//! sees: the selfies in flight (its own and the new one) divided by the rate
//! at which selfies complete while any is in flight. Measuring that rate
//! over busy time only (not wall time) keeps a quiet link from looking slow:
//! a guest every minute completes at 1/min of wall time, but in a fraction
//! of a second of busy time. The rate decays with a 5 s time constant, so
//! it follows indexing starting and stopping on the same cores, and the mix of
//! JPEG and HEIC selfies. With
//! nothing in flight, or too few completions to know the rate, a selfie is
//! always admitted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The time constant of the completion rate's decay: short, because a
/// HEIC selfie costs several times a JPEG one and the mix changes by the
/// minute (with 30 s, a burst of JPEG guests after a few HEIC ones was shed
/// on the HEIC rate for half a minute).
const DECAY: Duration = Duration::from_secs(5);
/// Completions (decayed) below which the rate is not trusted.
const MIN_COMPLETIONS: f64 = 3.0;

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// Completions and busy seconds, both decayed.
    completed: f64,
    busy: f64,
    at: Instant,
}

/// The gateway's selfie queue: admits or sheds, and learns the rate.
#[derive(Debug)]
pub struct SelfieQueue {
    max_wait: Duration,
    state: Mutex<State>,
}

/// Held while a selfie is analysed. [`Ticket::done`] counts a completion;
/// dropped without it (a request given up, a dependency down), it only
/// leaves the queue, so that failures that cost nothing do not make the
/// rate look fast.
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<SelfieQueue>,
    done: bool,
}

impl Ticket {
    /// The selfie was analysed (a face found or not): a completion.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl State {
    /// Moves the clock to `now`: busy time accrues while anything is in
    /// flight, and both counters decay.
    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let keep = (-dt / DECAY.as_secs_f64()).exp();
        if self.in_flight > 0 {
            // The busy time of this interval, each instant decayed by its
            // age: the integral of e^(-age/τ) over it, τ(1 - e^(-dt/τ)).
            self.busy = self.busy * keep + DECAY.as_secs_f64() * (1.0 - keep);
        } else {
            self.busy *= keep;
        }
        self.completed *= keep;
        self.at = now;
    }

    /// Selfies completed per busy second, when known.
    fn rate(&self) -> Option<f64> {
        (self.completed >= MIN_COMPLETIONS && self.busy > 0.0).then(|| self.completed / self.busy)
    }
}

impl SelfieQueue {
    /// `max_wait` zero turns shedding off (every selfie is admitted).
    pub fn new(max_wait: Duration) -> Arc<Self> {
        Self::new_at(max_wait, Instant::now())
    }

    fn new_at(max_wait: Duration, now: Instant) -> Arc<Self> {
        Arc::new(SelfieQueue {
            max_wait,
            state: Mutex::new(State {
                in_flight: 0,
                completed: 0.0,
                busy: 0.0,
                at: now,
            }),
        })
    }

    /// Admits a selfie, or says how long it would wait (the Retry-After).
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, Duration> {
        self.admit_at(Instant::now())
    }

    fn admit_at(self: &Arc<Self>, now: Instant) -> Result<Ticket, Duration> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.advance(now);
        if !self.max_wait.is_zero() && s.in_flight > 0 {
            if let Some(rate) = s.rate() {
                let wait = Duration::from_secs_f64((s.in_flight + 1) as f64 / rate);
                if wait > self.max_wait {
                    return Err(wait);
                }
            }
        }
        s.in_flight += 1;
        Ok(Ticket {
            queue: Arc::clone(self),
            done: false,
        })
    }

    fn leave_at(&self, now: Instant, completed: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.advance(now);
        s.in_flight = s.in_flight.saturating_sub(1);
        if completed {
            s.completed += 1.0;
        }
    }

    /// Selfies in flight now.
    pub fn in_flight(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queue.leave_at(Instant::now(), self.done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Completes `ticket` at `at` (as `done` would, at a chosen time).
    fn finish(q: &Arc<SelfieQueue>, ticket: Ticket, at: Instant) {
        std::mem::forget(ticket);
        q.leave_at(at, true);
    }

    #[test]
    fn a_lone_selfie_is_always_admitted() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(2 * S, t0);
        // Slow selfies one at a time: nothing is ever in flight beside them.
        for i in 0..10u32 {
            let at = t0 + 60 * S * i;
            let ticket = q.admit_at(at).expect("admitted");
            finish(&q, ticket, at + 5 * S);
        }
    }

    #[test]
    fn a_queue_longer_than_the_max_wait_sheds_with_the_expected_wait() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(Duration::from_millis(2200), t0);
        // Learn the rate: 2 selfies a second of busy time (one every 500 ms).
        let mut now = t0;
        for _ in 0..10 {
            let ticket = q.admit_at(now).unwrap();
            now += Duration::from_millis(500);
            finish(&q, ticket, now);
        }
        // 3 in flight: a 4th would wait about 4 / 2 = 2 s: admitted (the
        // bound is 2.2 s); a 5th would wait about 2.5 s: shed, told to
        // retry then.
        let held: Vec<Ticket> = (0..3).map(|_| q.admit_at(now).unwrap()).collect();
        let fourth = q.admit_at(now).expect("a wait of 2 s is within 2.2 s");
        let wait = q.admit_at(now).expect_err("the fifth waits too long");
        assert!(
            wait > 2 * S && wait < 3 * S,
            "expected about 2.5 s, got {wait:?}"
        );
        assert_eq!(q.in_flight(), 4, "a shed selfie is not counted");
        // As they complete, room comes back.
        drop(fourth);
        drop(held);
        assert_eq!(q.in_flight(), 0);
        q.admit_at(now).expect("admitted again");
    }

    #[test]
    fn quiet_busy_periods_do_not_make_the_rate_look_slow() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(2 * S, t0);
        // Pairs of selfies 2 s apart, each pair answered in 400 ms: the
        // wall-clock rate is 1/s (4 guests: 5 s, shed), the busy-time rate
        // 5/s (4 guests: 1 s, admitted).
        let mut now = t0;
        for _ in 0..6 {
            let a = q.admit_at(now).unwrap();
            let b = q.admit_at(now).expect("a second guest at once is admitted");
            now += Duration::from_millis(400);
            finish(&q, a, now);
            finish(&q, b, now);
            now += Duration::from_millis(1600);
        }
        // Four guests at once: at most 4 / 5 per second = 0.8 s.
        let _held: Vec<Ticket> = (0..4).map(|_| q.admit_at(now).expect("admitted")).collect();
    }

    #[test]
    fn given_up_selfies_leave_without_counting_as_completions() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(2 * S, t0);
        // A stream of requests that fail at once (nothing analysed).
        for _ in 0..50 {
            drop(q.admit_at(t0).unwrap());
        }
        assert_eq!(q.in_flight(), 0);
        let s = q.state.lock().unwrap();
        assert_eq!(s.completed, 0.0, "no completion counted");
        assert!(s.rate().is_none());
    }

    #[test]
    fn long_busy_stretches_count_in_full() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(2 * S, t0);
        let ticket = q.admit_at(t0).unwrap();
        finish(&q, ticket, t0 + 20 * S);
        let s = q.state.lock().unwrap();
        // τ(1 - e^(-20/5)) = 4.91 s of decayed busy time, not less.
        assert!(
            (s.busy - 5.0 * (1.0 - (-4.0f64).exp())).abs() < 1e-9,
            "{}",
            s.busy
        );
    }

    #[test]
    fn zero_max_wait_turns_shedding_off() {
        let t0 = Instant::now();
        let q = SelfieQueue::new_at(Duration::ZERO, t0);
        let mut now = t0;
        for _ in 0..10 {
            let ticket = q.admit_at(now).unwrap();
            now += 10 * S;
            finish(&q, ticket, now);
        }
        let _held: Vec<Ticket> = (0..50).map(|_| q.admit_at(now).unwrap()).collect();
    }
}
