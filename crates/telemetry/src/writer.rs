//! The way log lines reach stderr: a formatted line is appended to a shared buffer, and a
//! thread of its own writes what has gathered, many lines per write.
//!
//! Owns: the buffer, its bound (past it a line is dropped and counted), the writer thread and
//! the flush at exit. Must not know: how lines are formatted or filtered (the subscriber's).
//!
//! Why not `tracing-appender`'s non-blocking writer: it hands each line over a channel and
//! wakes its thread for each one, which cost workspace-server more CPU per request (0.19 ms
//! against 0.18 per MCP commit) than writing each line straight to stderr. Here a line costs
//! a lock and a copy; the thread is woken only when lines arrive after a quiet spell, and
//! then gathers for [`GATHER`] before it writes.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long the thread lets lines gather before it writes them (the most a line waits while
/// stderr keeps up).
pub const GATHER: Duration = Duration::from_millis(10);

/// How long the flush at exit waits for a reader that has stopped reading.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// Lines waiting for stderr, and the thread's state.
#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The thread waits for a line (and must be woken for one).
    idle: bool,
    closing: bool,
    /// No thread writes (none could be started, or it has finished at exit): each line is
    /// written by its caller.
    direct: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    limit: usize,
    dropped: AtomicU64,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock is held cannot leave the buffer half-appended in a way that
        // matters: it holds whole lines or a line's prefix, and logging must go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the subscriber writes (cheap to clone: one per line).
#[derive(Clone)]
pub struct Lines {
    shared: Arc<Shared>,
}

/// Counts the lines dropped because the reader fell [`Lines`]' limit behind.
#[derive(Clone)]
pub struct Dropped(Arc<Shared>);

impl Dropped {
    pub fn count(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

/// Writes what is still buffered when dropped (waiting up to a second for a reader that has
/// stopped reading) and stops the thread; lines logged after that are written by their
/// callers, one write each.
#[must_use = "log lines still buffered are written when this is dropped"]
pub struct LogFlush {
    shared: Arc<Shared>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl std::fmt::Debug for LogFlush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogFlush")
    }
}

impl Drop for LogFlush {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(done) = self.done.take()
            && done.recv_timeout(FLUSH_WAIT).is_ok()
        {
            // The thread has written everything and finished: what is logged from now on (the
            // runtime's last words) is written by its caller.
            let mut state = self.shared.lock();
            state.direct = true;
            let rest = std::mem::take(&mut state.buf);
            drop(state);
            if !rest.is_empty() {
                let _ = self
                    .shared
                    .out
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write_all(&rest);
            }
        }
    }
}

/// Starts the writer thread over `out`, keeping at most `limit` bytes waiting for it. Without
/// a thread (the system refused one), each line is written by its caller.
pub fn spawn(out: impl Write + Send + 'static, limit: usize) -> (Lines, Dropped, LogFlush) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        limit,
        dropped: AtomicU64::new(0),
        out: Mutex::new(Box::new(out)),
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread_shared = shared.clone();
    let started = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
        write_until_closed(&thread_shared);
        let _ = done_tx.send(());
    });
    let done = match started {
        Ok(_) => Some(done_rx),
        Err(_) => {
            shared.lock().direct = true;
            None
        }
    };
    (
        Lines { shared: shared.clone() },
        Dropped(shared.clone()),
        LogFlush { shared, done },
    )
}

/// The thread: wait for a line, let more gather, write them all; at close, write the rest.
fn write_until_closed(shared: &Shared) {
    let mut spare = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.buf.is_empty() && !state.closing {
            state.idle = true;
            state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if !state.closing {
            drop(state);
            std::thread::sleep(GATHER);
            state = shared.lock();
        }
        std::mem::swap(&mut state.buf, &mut spare);
        let closing = state.closing;
        drop(state);
        if !spare.is_empty() {
            let mut out = shared.out.lock().unwrap_or_else(PoisonError::into_inner);
            // A failing stderr cannot be reported anywhere; the lines are lost either way.
            let _ = out.write_all(&spare);
            let _ = out.flush();
            spare.clear();
        }
        if closing && shared.lock().buf.is_empty() {
            return;
        }
    }
}

impl Write for Lines {
    /// Takes one formatted line (the subscriber writes each in one call): appended whole, or
    /// dropped and counted when the buffer is full.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.direct {
            drop(state);
            let mut out = self.shared.out.lock().unwrap_or_else(PoisonError::into_inner);
            out.write_all(line)?;
            return Ok(line.len());
        }
        if state.buf.len() + line.len() > self.shared.limit {
            drop(state);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        state.buf.extend_from_slice(line);
        let wake = std::mem::take(&mut state.idle);
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A sink the test reads, which can be told to stall.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicU64>,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.bytes.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(what: &str, ok: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "{what} within 5 s");
            std::thread::yield_now();
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_many_per_write() {
        let sink = Sink::default();
        let (mut lines, dropped, flush) = spawn(sink.clone(), 1 << 20);
        for i in 0..1000 {
            lines.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        wait_for("every line", || sink.bytes.lock().unwrap().len() == expected.len());
        assert_eq!(String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(), expected);
        assert!(
            sink.writes.load(Ordering::Relaxed) < 100,
            "{} writes",
            sink.writes.load(Ordering::Relaxed)
        );
        assert_eq!(dropped.count(), 0);
        // After a quiet spell, a single line still arrives (the thread is woken for it).
        lines.write_all(b"after\n").unwrap();
        wait_for("the line after", || sink.bytes.lock().unwrap().ends_with(b"after\n"));
        drop(flush);
        // Once the thread has finished, a line is written at once by its caller.
        lines.write_all(b"late\n").unwrap();
        assert!(sink.bytes.lock().unwrap().ends_with(b"after\nlate\n"));
    }

    #[test]
    fn past_the_limit_lines_are_dropped_and_counted_and_the_rest_flushed_at_exit() {
        /// A reader that does not read until told to.
        struct Stalled(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Stalled {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                self.1.write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (mut lines, dropped, flush) = spawn(Stalled(gate.clone(), sink.clone()), 100);
        // The first line is taken by the thread, which then blocks writing it.
        lines.write_all(b"first line\n").unwrap();
        wait_for("the thread to take the first line", || {
            lines.shared.lock().buf.is_empty()
        });
        // 10 lines of 10 bytes fill the buffer; the next 5 are dropped, and nothing blocks.
        for i in 0..15 {
            lines.write_all(format!("queued {i:02}\n").as_bytes()).unwrap();
        }
        assert_eq!(dropped.count(), 5);
        // The reader comes back; the flush at exit writes what was kept.
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        drop(flush);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        let expected: String = std::iter::once("first line\n".to_owned())
            .chain((0..10).map(|i| format!("queued {i:02}\n")))
            .collect();
        assert_eq!(text, expected);
    }
}
