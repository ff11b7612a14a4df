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
//! finished, and the execution waits while a wave runs, so the keys of one
//! level meet in one batch and the count does not depend on which query
//! returns first.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
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
pub struct FetchQueue(Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

impl FetchQueue {
    /// The spawner to give `DataLoader::new`.
    pub fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let queue = Arc::clone(&self.0);
        move |fetch| queue.lock().unwrap_or_else(|e| e.into_inner()).push(fetch)
    }

    fn take(&self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
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
            if this.running.is_empty() {
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
            // A wave runs to its end before the execution is polled again:
            // a loader takes its keys only when its fetch starts (after
            // DataLoader's timer, however short), so resolvers that ran
            // while a wave was in flight could add keys to a batch that had
            // not started yet, or start a new one, depending on timing.
            while let Poll::Ready(Some(())) = this.running.poll_next_unpin(cx) {}
            if !this.running.is_empty() {
                return Poll::Pending;
            }
            // Every fetch of the wave has finished and woken its resolvers.
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
