//! Deterministic DataLoader batching without a timer.
//!
//! async-graphql's DataLoader gathers keys for `delay` (1 ms by default) and
//! then loads them in a spawned task. A delay costs every nested level that
//! long (async-graphql issue 1306); with no delay, the spawned fetch can run
//! before the request has registered all its keys, because a list resolves
//! its items through `FuturesUnordered`, which yields after 32 of them.
//!
//! Here the fetches run inside the request's own task instead: `Batched`
//! polls the GraphQL execution until it is truly blocked (it returned
//! `Pending` without waking itself), and only then starts the fetches that
//! the loaders queued meanwhile. Every key of a level is registered by then,
//! so each level of a nested read costs one statement per relation, for 5
//! rows or 100. Fetches go in waves: a wave starts when the previous one has
//! finished. A loader's fetch takes its keys only once DataLoader's timer
//! has fired (however short), so while a wave's fetches have not all taken
//! theirs, the execution waits: a resolver run then could add keys to one of
//! them or not, by timing. Once they have (each loader says so as its load
//! begins), the execution goes on with what has arrived while the rest are
//! in flight, and the keys it asks for wait for the next wave. So the keys
//! of one level meet in one batch, and the count does not depend on which
//! query returns first.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::{StreamExt as _, future::BoxFuture, stream::FuturesUnordered};

/// How many times in a row the execution may ask to be polled again before
/// the queued fetches are started anyway (a safety valve: a page of 100 rows
/// needs 4).
const MAX_REPOLLS: usize = 64;

/// Where a request's loaders put their fetches.
#[derive(Clone, Default)]
pub struct FetchQueue {
    fetches: Arc<Mutex<Vec<BoxFuture<'static, ()>>>>,
    /// Fetches of the running wave that have not taken their keys yet.
    untaken: Arc<AtomicUsize>,
}

impl FetchQueue {
    /// The spawner to give `DataLoader::new`.
    pub fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let queue = Arc::clone(&self.fetches);
        move |fetch| queue.lock().unwrap_or_else(|e| e.into_inner()).push(fetch)
    }

    /// Called by a loader as its load begins: its fetch has taken its keys.
    pub fn taken(&self) {
        let _ = self
            .untaken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        let fetches = std::mem::take(&mut *self.fetches.lock().unwrap_or_else(|e| e.into_inner()));
        self.untaken.store(fetches.len(), Ordering::Release);
        fetches
    }

    /// Whether every fetch of the running wave has taken its keys. (A fetch
    /// that found no keys never says so; the execution then waits for the
    /// wave's end, which is always safe.)
    fn all_taken(&self) -> bool {
        self.untaken.load(Ordering::Acquire) == 0
    }
}

/// Runs `execution` and the fetches its loaders queue, in one task.
pub fn run<F: Future + Send>(queue: FetchQueue, execution: F) -> Batched<F> {
    Batched {
        execution: Box::pin(execution),
        queue,
        running: FuturesUnordered::new(),
        waker: None,
    }
}

pub struct Batched<F> {
    execution: Pin<Box<F>>,
    queue: FetchQueue,
    running: FuturesUnordered<BoxFuture<'static, ()>>,
    waker: Option<Arc<FlagWaker>>,
}

/// Wakes the task and notes that the execution asked for it.
struct FlagWaker {
    task: Waker,
    woken: AtomicBool,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<F: Future> Future for Batched<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let flag = match &this.waker {
            Some(w) if w.task.will_wake(cx.waker()) => Arc::clone(w),
            _ => {
                let w = Arc::new(FlagWaker {
                    task: cx.waker().clone(),
                    woken: AtomicBool::new(false),
                });
                this.waker = Some(Arc::clone(&w));
                w
            }
        };
        let waker = Waker::from(Arc::clone(&flag));
        loop {
            if this.running.is_empty() || this.queue.all_taken() {
                let mut repolls = 0;
                loop {
                    flag.woken.store(false, Ordering::Release);
                    if let Poll::Ready(out) = this.execution.as_mut().poll(&mut Context::from_waker(&waker)) {
                        return Poll::Ready(out);
                    }
                    // It yielded with more work to do: more keys may come.
                    if !flag.woken.load(Ordering::Acquire) || repolls == MAX_REPOLLS {
                        break;
                    }
                    repolls += 1;
                }
            }
            if this.running.is_empty() {
                // Loads go in waves: keys that the last wave's results
                // revealed (from any of its relations) share one statement
                // per loader.
                this.running.extend(this.queue.take());
                if this.running.is_empty() {
                    if flag.woken.load(Ordering::Acquire) {
                        // The safety valve with nothing to fetch: yield to
                        // the runtime rather than spin.
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
            }
            let mut finished = false;
            while let Poll::Ready(Some(())) = this.running.poll_next_unpin(cx) {
                finished = true;
            }
            // Go round again when a fetch has finished (its resolvers are
            // awake), or when the execution was woken while it could run.
            let runnable = this.running.is_empty() || this.queue.all_taken();
            if !(finished || (runnable && flag.woken.load(Ordering::Acquire))) {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn fetches_run_only_once_the_execution_is_blocked() {
        let queue = FetchQueue::default();
        let spawn = queue.spawner();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let log = Arc::clone(&order);
        let execution = async move {
            let log2 = Arc::clone(&log);
            spawn(Box::pin(async move {
                log2.lock().unwrap().push("fetch");
                let _ = tx.send(());
            }));
            // Yield (waking itself at once, as FuturesUnordered does) a few
            // times before blocking on the result.
            for _ in 0..3 {
                YieldOnce(false).await;
                log.lock().unwrap().push("more keys");
            }
            rx.await.unwrap();
            log.lock().unwrap().push("done");
        };
        run(queue, execution).await;
        assert_eq!(
            *order.lock().unwrap(),
            ["more keys", "more keys", "more keys", "fetch", "done"]
        );
    }
}
