//! A bounded outbound queue drained in batches by a gRPC response stream.
//!
//! The driver pushes without waiting (it must never block on one slow
//! reader); when a queue's weight (or, if it has a byte limit, its bytes)
//! would pass its limit the push fails and the driver cuts that reader, which
//! is how `max_backlog` and `max_peer_bytes` keep memory bounded. A queue may
//! also have watermarks: a push that takes it above the high one reports it
//! *congested*, and draining it below the low one calls a hook, so the bus can
//! slow the traffic down before a reader that is merely slow has to be cut.
//! The stream side takes everything queued at once, so a busy queue goes out
//! as large frames.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue's weight would pass its limit: the reader is too slow.
    Full,
    /// The queue was closed.
    Closed,
}

struct State<T> {
    /// Items with their weight and bytes.
    queue: VecDeque<(T, usize, usize)>,
    weight: usize,
    bytes: usize,
    closed: Option<tonic::Status>,
    closing: bool,
    waker: Option<Waker>,
    /// Bumped by `wake` so the reader can notice side-channel changes.
    nudged: bool,
    /// Above the high watermark since the last time it drained below the low one.
    congested: bool,
}

/// Called when a congested queue drains below its low watermark.
pub type DrainHook = Box<dyn Fn() + Send + Sync>;

struct Watermarks {
    high: usize,
    low: usize,
    on_low: DrainHook,
}

/// The shared queue. Cloning the `Arc` gives writers; one reader drains it.
pub struct Outbox<T> {
    state: Mutex<State<T>>,
    limit: usize,
    max_bytes: usize,
    watermarks: Option<Watermarks>,
}

impl<T> Outbox<T> {
    /// A queue that refuses pushes once its total weight would exceed `limit`.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self::build(limit, None))
    }

    /// A queue that refuses pushes once its total weight would exceed `limit`
    /// or its total bytes (as given to [`Outbox::push_sized`]) `max_bytes`.
    pub fn with_byte_limit(limit: usize, max_bytes: usize) -> Arc<Self> {
        let mut outbox = Self::build(limit, None);
        outbox.max_bytes = max_bytes.max(1);
        Arc::new(outbox)
    }

    /// A queue with a `limit` and watermarks: a push above `high` reports
    /// congestion once; draining to `low` or below calls `on_low`.
    pub fn with_watermarks(limit: usize, high: usize, low: usize, on_low: DrainHook) -> Arc<Self> {
        Arc::new(Self::build(limit, Some(Watermarks { high, low, on_low })))
    }

    fn build(limit: usize, watermarks: Option<Watermarks>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                weight: 0,
                bytes: 0,
                closed: None,
                closing: false,
                waker: None,
                nudged: false,
                congested: false,
            }),
            limit: limit.max(1),
            max_bytes: usize::MAX,
            watermarks,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every critical section is a plain push or drain), so poison is ignored.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues `item`, counting `weight` toward the limit. `Ok(true)` means
    /// this push took the queue above its high watermark (reported once, until
    /// it drains below the low one).
    pub fn push(&self, item: T, weight: usize) -> Result<bool, PushError> {
        self.push_sized(item, weight, 0)
    }

    /// Like [`Outbox::push`], also counting `bytes` toward the byte limit.
    pub fn push_sized(&self, item: T, weight: usize, bytes: usize) -> Result<bool, PushError> {
        let mut state = self.lock();
        if state.closing {
            return Err(PushError::Closed);
        }
        let over = state.weight + weight > self.limit
            || state.bytes.saturating_add(bytes) > self.max_bytes;
        if over && !state.queue.is_empty() {
            return Err(PushError::Full);
        }
        state.weight += weight;
        state.bytes = state.bytes.saturating_add(bytes);
        state.queue.push_back((item, weight, bytes));
        let congested = match &self.watermarks {
            Some(w) if !state.congested && state.weight > w.high => {
                state.congested = true;
                true
            }
            _ => false,
        };
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(congested)
    }

    /// Wakes the reader without queueing anything (a side-channel value changed).
    pub fn wake(&self) {
        let mut state = self.lock();
        state.nudged = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the queue: what is queued is still delivered, then the stream
    /// ends, with `status` as its final error if one is given.
    pub fn close(&self, status: Option<tonic::Status>) {
        let mut state = self.lock();
        if state.closing {
            return;
        }
        state.closing = true;
        state.closed = status;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the queue and drops what is queued: the reader sees `status` next.
    pub fn abort(&self, status: tonic::Status) {
        let mut state = self.lock();
        state.queue.clear();
        state.weight = 0;
        state.bytes = 0;
        state.closing = true;
        state.closed = Some(status);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closing
    }

    /// Weight queued now.
    pub fn backlog(&self) -> usize {
        self.lock().weight
    }

    /// Bytes queued now (as given to [`Outbox::push_sized`]).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Takes queued items (at least one, then until `limits` is reached), or
    /// reports the end.
    pub fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        limits: &FrameLimits<T>,
        out: &mut Vec<T>,
    ) -> Poll<Drained> {
        let mut state = self.lock();
        if !state.queue.is_empty() {
            let mut bytes = 0;
            while let Some((item, weight, size)) = state.queue.pop_front() {
                state.weight -= weight;
                state.bytes -= size;
                bytes += (limits.size_of)(&item);
                out.push(item);
                if out.len() >= limits.max_items || bytes >= limits.max_bytes {
                    break;
                }
            }
            let drained_low = match &self.watermarks {
                Some(w) if state.congested && state.weight <= w.low => {
                    state.congested = false;
                    Some(&w.on_low)
                }
                _ => None,
            };
            drop(state);
            if let Some(on_low) = drained_low {
                on_low();
            }
            return Poll::Ready(Drained::Items);
        }
        if state.closing {
            return Poll::Ready(Drained::End(state.closed.take()));
        }
        if std::mem::take(&mut state.nudged) {
            return Poll::Ready(Drained::Nudged);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// How much one frame may carry.
pub struct FrameLimits<T> {
    /// Most items in one frame.
    pub max_items: usize,
    /// A frame stops growing once its items' sizes add up to this.
    pub max_bytes: usize,
    /// Approximate encoded size of one item.
    pub size_of: fn(&T) -> usize,
}

/// What one drain found.
#[derive(Debug)]
pub enum Drained {
    /// Items were moved into the output vector.
    Items,
    /// Nothing queued, but [`Outbox::wake`] was called.
    Nudged,
    /// The queue is closed and empty; the status, if any, ends the stream.
    End(Option<tonic::Status>),
}

/// A gRPC response stream over an [`Outbox`]: each poll drains what is queued
/// (within its [`FrameLimits`]) into one frame built by `make`.
/// `make` may return `None` to skip a frame (a wake-up with nothing new).
/// When the stream is dropped (the peer went away, or tonic finished it),
/// `on_drop` runs, so the owner learns of the end.
pub struct FrameStream<T, F> {
    outbox: Arc<Outbox<T>>,
    make: F,
    limits: FrameLimits<T>,
    done: bool,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl<T, F> FrameStream<T, F> {
    /// Streams `outbox` through `make`.
    pub fn new(outbox: Arc<Outbox<T>>, limits: FrameLimits<T>, make: F) -> Self {
        Self {
            outbox,
            make,
            limits,
            done: false,
            on_drop: None,
        }
    }

    /// Runs `f` when the stream is dropped.
    pub fn on_drop(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_drop = Some(Box::new(f));
        self
    }
}

impl<T, F> Drop for FrameStream<T, F> {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

impl<T, F, Frame> futures::Stream for FrameStream<T, F>
where
    F: FnMut(Vec<T>) -> Option<Frame> + Unpin,
    T: Unpin,
{
    type Item = Result<Frame, tonic::Status>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut items = Vec::new();
            match this.outbox.poll_drain(cx, &this.limits, &mut items) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Drained::Items | Drained::Nudged) => {
                    if let Some(frame) = (this.make)(items) {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Poll::Ready(Drained::End(status)) => {
                    this.done = true;
                    return Poll::Ready(status.map(Err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn refuses_past_limit_and_drains_in_batches() {
        let outbox = Outbox::new(3);
        for i in 0..3 {
            outbox.push(i, 1).unwrap();
        }
        assert_eq!(outbox.push(9, 1), Err(PushError::Full));
        assert_eq!(outbox.backlog(), 3);
        let limits = FrameLimits {
            max_items: 2,
            max_bytes: usize::MAX,
            size_of: |_: &i32| 1,
        };
        let mut stream = FrameStream::new(outbox.clone(), limits, |items: Vec<i32>| Some(items));
        assert_eq!(stream.next().await.unwrap().unwrap(), vec![0, 1]);
        assert_eq!(outbox.backlog(), 1);
        assert_eq!(stream.next().await.unwrap().unwrap(), vec![2]);
        outbox.push(4, 1).unwrap();
        outbox.close(Some(tonic::Status::resource_exhausted("cut")));
        assert_eq!(outbox.push(5, 1), Err(PushError::Closed));
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            vec![4],
            "queued items still go out"
        );
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn watermarks_report_congestion_once_and_call_the_hook_when_drained() {
        let drained = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = drained.clone();
        let hook: DrainHook = Box::new(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let outbox = Outbox::with_watermarks(10, 4, 1, hook);
        let pushes: Vec<bool> = (0..7).map(|i| outbox.push(i, 1).unwrap()).collect();
        assert_eq!(
            pushes,
            [false, false, false, false, true, false, false],
            "reported once, above 4"
        );
        let limits = FrameLimits {
            max_items: 3,
            max_bytes: usize::MAX,
            size_of: |_: &i32| 1,
        };
        let mut stream = FrameStream::new(outbox.clone(), limits, |items: Vec<i32>| Some(items));
        stream.next().await.unwrap().unwrap();
        assert_eq!(
            drained.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "4 left: above low"
        );
        stream.next().await.unwrap().unwrap();
        assert_eq!(
            drained.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "1 left: at low"
        );
        assert!(!outbox.push(9, 1).unwrap(), "below high again");
    }

    #[tokio::test]
    async fn a_byte_limit_refuses_as_the_weight_limit_does() {
        let outbox = Outbox::with_byte_limit(100, 10);
        outbox.push_sized(1, 1, 6).unwrap();
        assert_eq!(outbox.push_sized(2, 1, 6), Err(PushError::Full));
        outbox.push_sized(3, 1, 4).unwrap();
        let limits = FrameLimits {
            max_items: 8,
            max_bytes: usize::MAX,
            size_of: |_: &i32| 1,
        };
        let mut stream = FrameStream::new(outbox.clone(), limits, |items: Vec<i32>| Some(items));
        assert_eq!(stream.next().await.unwrap().unwrap(), vec![1, 3]);
        outbox.push_sized(4, 1, 10).unwrap();
        let big = Outbox::with_byte_limit(100, 10);
        big.push_sized(5, 1, 50).unwrap();
        assert_eq!(
            big.push_sized(6, 1, 1),
            Err(PushError::Full),
            "one big item fits"
        );
    }

    #[tokio::test]
    async fn one_heavy_item_fits_an_empty_queue() {
        let outbox = Outbox::new(2);
        outbox.push("big", 10).unwrap();
        assert_eq!(outbox.push("small", 1), Err(PushError::Full));
    }

    #[tokio::test]
    async fn wake_yields_an_empty_drain_and_drop_runs_hook() {
        let outbox = Outbox::<u8>::new(8);
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = dropped.clone();
        let limits = FrameLimits {
            max_items: 8,
            max_bytes: 3,
            size_of: |_: &u8| 1,
        };
        let mut stream =
            FrameStream::new(outbox.clone(), limits, |items: Vec<u8>| Some(items.len()))
                .on_drop(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        outbox.wake();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        for i in 0..5 {
            outbox.push(i, 1).unwrap();
        }
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            3,
            "byte limit ends the frame"
        );
        assert_eq!(stream.next().await.unwrap().unwrap(), 2);
        drop(stream);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }
}
