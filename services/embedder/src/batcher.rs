//! Dynamic batching across concurrent requests. Requests put their faces on
//! one queue; each inference thread (one ONNX session each) takes the first
//! waiting face, then keeps taking faces until the batch is full or the
//! first face has waited `max_wait`, runs one inference and answers every
//! request whose faces were in the batch. Inference never runs on the async
//! runtime. Interactive faces (a guest's selfie) have a queue of their own,
//! which every batch takes from first.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facepass_core::{Error, ErrorCode};
use tokio::sync::oneshot;

/// Runs a batch: `inputs` is `batch` preprocessed faces, contiguous; returns
/// `batch * dimension` raw outputs.
pub trait Model: Send + 'static {
    fn infer(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>, String>;
}

/// What the main queue carries: a face, or a nudge that an interactive face
/// waits (an idle inference thread sleeps on the main queue).
enum Slot {
    Face(Item),
    Wake,
}

struct Item {
    input: Vec<f32>,
    queued_at: Instant,
    reply: Arc<Mutex<Reply>>,
    slot: usize,
}

/// The answers of one request, filled in slot by slot.
struct Reply {
    results: Vec<Option<Vec<f32>>>,
    missing: usize,
    error: Option<Error>,
    sender: Option<oneshot::Sender<Result<Vec<Vec<f32>>, Error>>>,
}

impl Reply {
    fn fill(&mut self, slot: usize, result: Result<Vec<f32>, Error>) {
        match result {
            Ok(v) => self.results[slot] = Some(v),
            Err(e) => self.error = Some(e),
        }
        self.missing -= 1;
        if self.missing == 0 {
            if let Some(sender) = self.sender.take() {
                let answer = match self.error.take() {
                    Some(e) => Err(e),
                    None => Ok(self
                        .results
                        .drain(..)
                        .map(|r| r.unwrap_or_default())
                        .collect()),
                };
                let _ = sender.send(answer);
            }
        }
    }
}

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_batch: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    pub dimension: usize,
    pub input_len: usize,
    /// Niceness of the threads that run bulk batches (0: the process's).
    pub bulk_nice: i32,
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: std::sync::atomic::AtomicU64,
    pub faces: std::sync::atomic::AtomicU64,
}

pub struct Batcher {
    queue: SyncSender<Slot>,
    urgent: SyncSender<Item>,
    /// Whether an inference thread of its own serves the interactive queue.
    dedicated: bool,
    settings: Settings,
    pub stats: Arc<Stats>,
}

/// The queues the bulk inference threads take from: the main one, and the
/// interactive one when no thread of its own serves it.
type BulkQueues = Arc<Mutex<(mpsc::Receiver<Slot>, Option<mpsc::Receiver<Item>>)>>;

impl Batcher {
    /// Starts one inference thread per model.
    pub fn start<M: Model>(models: Vec<M>, settings: Settings) -> Batcher {
        Self::start_with(models, None, settings)
    }

    /// [`start`](Self::start); with `interactive`, that model gets an
    /// inference thread of its own, at the process's CPU priority, which
    /// embeds only interactive faces (a guest's selfie): they never wait
    /// for a bulk batch to end, nor run at the bulk threads' lowered
    /// priority (`bulk_nice`).
    pub fn start_with<M: Model>(
        models: Vec<M>,
        interactive: Option<M>,
        settings: Settings,
    ) -> Batcher {
        let (queue, receiver) = mpsc::sync_channel::<Slot>(settings.queue_capacity);
        let (urgent, urgent_receiver) = mpsc::sync_channel::<Item>(settings.queue_capacity);
        let stats = Arc::new(Stats::default());
        let dedicated = interactive.is_some();
        let shared_urgent = match interactive {
            Some(model) => {
                let stats = Arc::clone(&stats);
                std::thread::Builder::new()
                    .name("embedder-interactive".into())
                    .spawn(move || interactive_worker(model, urgent_receiver, settings, stats))
                    .expect("spawn inference thread");
                None
            }
            None => Some(urgent_receiver),
        };
        let receiver: BulkQueues = Arc::new(Mutex::new((receiver, shared_urgent)));
        for (i, model) in models.into_iter().enumerate() {
            let receiver = Arc::clone(&receiver);
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name(format!("embedder-infer-{i}"))
                .spawn(move || {
                    facepass_inference::priority::lower_this_thread(settings.bulk_nice);
                    worker(model, receiver, settings, stats)
                })
                .expect("spawn inference thread");
        }
        Batcher {
            queue,
            urgent,
            dedicated,
            settings,
            stats,
        }
    }

    /// Embeds preprocessed faces; the answer keeps their order.
    pub async fn embed(&self, inputs: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>, Error> {
        self.embed_with(inputs, false).await
    }

    /// [`embed`](Self::embed); `interactive` faces go before every waiting
    /// face that is not.
    pub async fn embed_with(
        &self,
        inputs: Vec<Vec<f32>>,
        interactive: bool,
    ) -> Result<Vec<Vec<f32>>, Error> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (sender, receiver) = oneshot::channel();
        let reply = Arc::new(Mutex::new(Reply {
            results: vec![None; inputs.len()],
            missing: inputs.len(),
            error: None,
            sender: Some(sender),
        }));
        for (slot, input) in inputs.into_iter().enumerate() {
            debug_assert_eq!(input.len(), self.settings.input_len);
            let item = Item {
                input,
                queued_at: Instant::now(),
                reply: Arc::clone(&reply),
                slot,
            };
            let sent = if interactive {
                self.urgent.try_send(item)
            } else {
                self.queue.try_send(Slot::Face(item)).map_err(|e| match e {
                    TrySendError::Full(Slot::Face(item)) => TrySendError::Full(item),
                    TrySendError::Disconnected(Slot::Face(item)) => {
                        TrySendError::Disconnected(item)
                    }
                    _ => unreachable!("a face was sent"),
                })
            };
            match sent {
                Ok(()) => {
                    crate::metrics::get().queued.inc();
                }
                Err(TrySendError::Full(item)) => {
                    // Faces already queued are still embedded, but nobody waits for them.
                    item.reply.lock().expect("reply lock").sender = None;
                    return Err(Error::new(
                        ErrorCode::Overloaded,
                        "embedder queue is full; retry later",
                    ));
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(Error::unavailable("embedder inference threads stopped"))
                }
            }
        }
        if interactive && !self.dedicated {
            // Wakes an idle inference thread; a busy one finds the faces
            // at its next batch anyway, so a full queue is no matter.
            let _ = self.queue.try_send(Slot::Wake);
        }
        receiver
            .await
            .map_err(|_| Error::internal("inference thread dropped a request"))?
    }
}

fn worker<M: Model>(mut model: M, receiver: BulkQueues, settings: Settings, stats: Arc<Stats>) {
    let mut batch: Vec<Item> = Vec::with_capacity(settings.max_batch);
    let mut inputs: Vec<f32> = Vec::with_capacity(settings.max_batch * settings.input_len);
    loop {
        {
            // Only one thread gathers at a time; the others wait for the lock.
            let guard = match receiver.lock() {
                Ok(r) => r,
                Err(_) => return,
            };
            let (receiver, urgent) = &*guard;
            // Interactive faces first, as many as fit.
            if let Some(urgent) = urgent {
                while batch.len() < settings.max_batch {
                    match urgent.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
            }
            if batch.is_empty() {
                match receiver.recv() {
                    Ok(Slot::Face(item)) => batch.push(item),
                    // An interactive face came while this thread slept.
                    Ok(Slot::Wake) => continue,
                    Err(_) => return,
                }
            }
            let deadline = Instant::now() + settings.max_wait;
            while batch.len() < settings.max_batch {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match receiver.recv_timeout(deadline - now) {
                    Ok(Slot::Face(item)) => batch.push(item),
                    Ok(Slot::Wake) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        run_batch(&mut model, &mut batch, &mut inputs, &settings, &stats);
    }
}

/// The interactive inference thread: every interactive face waiting, at
/// once (up to `max_batch`), without waiting for company.
fn interactive_worker<M: Model>(
    mut model: M,
    urgent: mpsc::Receiver<Item>,
    settings: Settings,
    stats: Arc<Stats>,
) {
    let mut batch: Vec<Item> = Vec::with_capacity(settings.max_batch);
    let mut inputs: Vec<f32> = Vec::with_capacity(settings.max_batch * settings.input_len);
    loop {
        match urgent.recv() {
            Ok(item) => batch.push(item),
            Err(_) => return,
        }
        while batch.len() < settings.max_batch {
            match urgent.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        run_batch(&mut model, &mut batch, &mut inputs, &settings, &stats);
    }
}

/// One inference over `batch`, whose requests are answered (and it emptied).
fn run_batch<M: Model>(
    model: &mut M,
    batch: &mut Vec<Item>,
    inputs: &mut Vec<f32>,
    settings: &Settings,
    stats: &Stats,
) {
    inputs.clear();
    let metrics = crate::metrics::get();
    let started = Instant::now();
    for item in batch.iter() {
        inputs.extend_from_slice(&item.input);
        metrics
            .queue_wait_seconds
            .observe((started - item.queued_at).as_secs_f64());
    }
    let n = batch.len();
    metrics.queued.dec_by(n as i64);
    metrics.batch_size.observe(n as f64);
    let result = model.infer(inputs, n);
    metrics
        .inference_seconds
        .observe(started.elapsed().as_secs_f64());
    stats
        .batches
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    stats
        .faces
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    let failed = |e: Error, batch: &mut Vec<Item>| {
        for item in batch.drain(..) {
            item.reply
                .lock()
                .expect("reply lock")
                .fill(item.slot, Err(e.clone()));
        }
    };
    match result {
        Ok(outputs) if outputs.len() == n * settings.dimension => {
            for (item, raw) in batch
                .drain(..)
                .zip(outputs.chunks_exact(settings.dimension))
            {
                item.reply
                    .lock()
                    .expect("reply lock")
                    .fill(item.slot, Ok(l2_normalise(raw)));
            }
        }
        Ok(outputs) => failed(
            Error::internal(format!(
                "model returned {} values for {n} faces of dimension {}",
                outputs.len(),
                settings.dimension
            )),
            batch,
        ),
        Err(message) => failed(
            Error::internal(format!("recogniser inference: {message}")),
            batch,
        ),
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn l2_normalise(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles each input's first value into a 2-d output; records batch sizes.
    struct Echo {
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    impl Model for Echo {
        fn infer(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            self.sizes.lock().unwrap().push(batch);
            std::thread::sleep(Duration::from_millis(5));
            Ok(inputs.chunks(3).flat_map(|c| [c[0], 1.0]).collect())
        }
    }

    fn settings() -> Settings {
        Settings {
            max_batch: 8,
            max_wait: Duration::from_millis(20),
            queue_capacity: 64,
            dimension: 2,
            input_len: 3,
            bulk_nice: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_keep_order() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Arc::new(Batcher::start(
            vec![Echo {
                sizes: sizes.clone(),
            }],
            settings(),
        ));
        let mut tasks = Vec::new();
        for r in 0..6 {
            let batcher = Arc::clone(&batcher);
            tasks.push(tokio::spawn(async move {
                let inputs: Vec<Vec<f32>> = (0..3)
                    .map(|i| vec![(r * 10 + i) as f32, 0.0, 0.0])
                    .collect();
                (r, batcher.embed(inputs).await.unwrap())
            }));
        }
        for task in tasks {
            let (r, out) = task.await.unwrap();
            for (i, v) in out.iter().enumerate() {
                let x = (r * 10 + i) as f32;
                let norm = (x * x + 1.0).sqrt();
                assert!((v[0] - x / norm).abs() < 1e-6 && (v[1] - 1.0 / norm).abs() < 1e-6);
            }
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 18);
        assert!(
            sizes.iter().any(|&s| s > 3),
            "no batch mixed requests: {sizes:?}"
        );
        assert!(sizes.iter().all(|&s| s <= 8));
    }

    /// Records the first input value of every face, in inference order.
    struct Recorder {
        seen: Arc<Mutex<Vec<f32>>>,
    }

    impl Model for Recorder {
        fn infer(&mut self, inputs: &[f32], _batch: usize) -> Result<Vec<f32>, String> {
            self.seen
                .lock()
                .unwrap()
                .extend(inputs.chunks(3).map(|c| c[0]));
            std::thread::sleep(Duration::from_millis(20));
            Ok(inputs.chunks(3).flat_map(|c| [c[0], 1.0]).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interactive_face_goes_before_the_waiting_ones() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let batcher = Arc::new(Batcher::start(
            vec![Recorder { seen: seen.clone() }],
            settings(),
        ));
        // 40 photo faces queued (5 batches of 8), then a selfie's.
        let bulk = {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move {
                let inputs: Vec<Vec<f32>> = (1..=40).map(|i| vec![i as f32, 0.0, 0.0]).collect();
                batcher.embed(inputs).await.unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let selfie = batcher
            .embed_with(vec![vec![-1.0, 0.0, 0.0]], true)
            .await
            .unwrap();
        assert_eq!(selfie.len(), 1);
        bulk.await.unwrap();
        let order = seen.lock().unwrap().clone();
        let at = order.iter().position(|&v| v == -1.0).unwrap();
        // In the first or second batch, not after the 40 queued before it.
        assert!(at <= 16, "the selfie's face was embedded {at}th: {order:?}");
        // And an idle batcher answers it at once (the wake nudge).
        let started = Instant::now();
        batcher
            .embed_with(vec![vec![-2.0, 0.0, 0.0]], true)
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Each face's first value and the niceness of the thread that embedded it.
    type Seen = Arc<Mutex<Vec<(f32, Option<i32>)>>>;

    /// Blocks every batch until the test lets it go; records what it embeds.
    struct Gated {
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
        seen: Seen,
    }

    impl Model for Gated {
        fn infer(&mut self, inputs: &[f32], _batch: usize) -> Result<Vec<f32>, String> {
            let nice = facepass_inference::priority::thread_nice(
                facepass_inference::priority::this_thread_id(),
            );
            self.seen
                .lock()
                .unwrap()
                .extend(inputs.chunks(3).map(|c| (c[0], nice)));
            let (open, changed) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
            Ok(inputs.chunks(3).flat_map(|c| [c[0], 1.0]).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interactive_face_has_a_thread_of_its_own_at_full_priority() {
        let closed = || Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (bulk_gate, bulk_seen) = (closed(), Arc::new(Mutex::new(Vec::new())));
        let (own_gate, own_seen) = (closed(), Arc::new(Mutex::new(Vec::new())));
        // The interactive model never blocks.
        *own_gate.0.lock().unwrap() = true;
        let batcher = Arc::new(Batcher::start_with(
            vec![Gated {
                gate: bulk_gate.clone(),
                seen: bulk_seen.clone(),
            }],
            Some(Gated {
                gate: own_gate,
                seen: own_seen.clone(),
            }),
            Settings {
                bulk_nice: 10,
                ..settings()
            },
        ));
        // A bulk batch is running (and held), more faces wait behind it.
        let bulk = {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move {
                let inputs: Vec<Vec<f32>> = (1..=20).map(|i| vec![i as f32, 0.0, 0.0]).collect();
                batcher.embed(inputs).await.unwrap()
            })
        };
        while bulk_seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The selfie is answered while the bulk batch still runs.
        let selfie = batcher
            .embed_with(vec![vec![-1.0, 0.0, 0.0]], true)
            .await
            .unwrap();
        assert_eq!(selfie.len(), 1);
        assert!(!bulk.is_finished());
        assert_eq!(*own_seen.lock().unwrap(), vec![(-1.0, Some(0))]);
        {
            let (open, changed) = &*bulk_gate;
            *open.lock().unwrap() = true;
            changed.notify_all();
        }
        assert_eq!(bulk.await.unwrap().len(), 20);
        let bulk_seen = bulk_seen.lock().unwrap();
        assert_eq!(bulk_seen.len(), 20, "the selfie never reached a bulk batch");
        assert!(
            bulk_seen.iter().all(|&(_, nice)| nice == Some(10)),
            "bulk batches run lowered: {bulk_seen:?}"
        );
    }

    #[test]
    fn normalise_gives_unit_length() {
        let v = l2_normalise(&[3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(l2_normalise(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
