//! What passes between the N-API side (lib.rs) and a connection's task (conn.rs): JavaScript's
//! commands, the events that go back to it, the host they go through, and the count of bytes
//! `write` queued that are not on the socket yet.
use std::os::fd::OwnedFd;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::relay::RelayOptions;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    StartTls,
    Direct,
    None,
}

pub enum Cmd {
    TlsAnswer(Result<Option<Arc<ServerConfig>>, String>),
    /// Plaintext to the client before the relay; `Unwritten` counts it until it is written.
    Write(Vec<u8>, Arc<Unwritten>),
    End,
    Destroy,
    Pause(bool),
    Freeze,
    Relay(OwnedFd, RelayOptions),
    Release,
    Terminate(Vec<u8>),
}

pub enum Event {
    Hello {
        id: u32,
        sni: Option<String>,
        alpn: Vec<String>,
    },
    Secure {
        id: u32,
        version: String,
        cipher: String,
        sni: Option<String>,
        alpn: Option<String>,
    },
    Data {
        id: u32,
        data: Vec<u8>,
    },
    End {
        id: u32,
    },
    Frozen {
        id: u32,
    },
    /// Every byte given to `write` reached the socket, after a `write` left more than
    /// `DRAIN_ABOVE` unwritten (JavaScript's stream waits for it: backpressure).
    Drain {
        id: u32,
    },
    Observe {
        id: u32,
        client: Option<crate::seen::Seen>,
        server: Option<crate::seen::Seen>,
        hold: bool,
    },
    /// A summarized statement's answer succeeded (quiet.rs): its shape, its text, when the relay
    /// read it, and when the CommandComplete came with that message's tag (None: there was none).
    Summary {
        id: u32,
        shape: u32,
        text: Vec<u8>,
        at: f64,
        end: f64,
        tag: Option<Vec<u8>>,
    },
    /// A summarized statement's audit record (record.rs), in place of its summary. It names its
    /// session's audit log, not its connection: records of one log go in runs (batch.rs).
    Record {
        json: Vec<u8>,
        /// Its session's audit log (RelayOptions.recordSink).
        sink: u32,
    },
    Closed {
        id: u32,
        bytes_from_client: u64,
        bytes_to_client: u64,
        reusable: bool,
        error: Option<String>,
    },
}

/// Where events go (the N-API threadsafe function) and how an id is forgotten.
pub trait Host: Send + Sync + 'static {
    fn emit(&self, event: Event);
    fn forget(&self, id: u32);
    /// The events JavaScript has not taken are over their bound: what to wait on before reading
    /// on (batch.rs). None: go on.
    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        None
    }
}

/// The sending side of a connection's commands. Each is counted before it is sent, so that the
/// relay can tell nothing waits without asking the channel on every wake-up (`Inbox::poll_cheap`).
pub struct Commands {
    tx: UnboundedSender<Cmd>,
    sent: Arc<AtomicU64>,
}

impl Commands {
    /// False when the task has ended.
    pub fn send(&self, cmd: Cmd) -> bool {
        self.sent.fetch_add(1, Release);
        self.tx.send(cmd).is_ok()
    }
}

impl Drop for Commands {
    /// The channel's close wakes the task like a command: counted as one, it is asked.
    fn drop(&mut self) {
        self.sent.fetch_add(1, Release);
    }
}

/// A connection's commands as its task receives them.
pub struct Inbox {
    rx: UnboundedReceiver<Cmd>,
    sent: Arc<AtomicU64>,
    received: u64,
    /// The channel holds this task's waker (its last poll was Pending): a send wakes the task.
    waiting: bool,
}

pub fn commands() -> (Commands, Inbox) {
    let (tx, rx) = unbounded_channel();
    let sent = Arc::new(AtomicU64::new(0));
    let inbox = Inbox {
        rx,
        sent: sent.clone(),
        received: 0,
        waiting: false,
    };
    (Commands { tx, sent }, inbox)
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Cmd> {
        // Not known to leave the waker in the channel (tokio's budget): poll_cheap asks next.
        self.waiting = false;
        let cmd = self.rx.recv().await;
        self.received += u64::from(cmd.is_some());
        cmd
    }

    /// The next command. While every command sent has been received and the channel holds
    /// this task's waker, the channel is not asked (the relay polls this on every wake-up of its
    /// task, for each read and write). Poll it outside tokio's budget (`unconstrained`): a
    /// Pending for a spent budget would leave no waker in the channel.
    pub fn poll_cheap(&mut self, cx: &mut Context<'_>) -> Poll<Option<Cmd>> {
        if self.waiting && self.sent.load(Acquire) == self.received {
            return Poll::Pending;
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(cmd)) => {
                self.received += 1;
                self.waiting = false;
                Poll::Ready(Some(cmd))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                self.waiting = true;
                Poll::Pending
            }
        }
    }
}

/// Unwritten bytes given to `write` above which the caller waits for a 'drain' event.
pub const DRAIN_ABOVE: u64 = 64 * 1024;

/// Bytes `write` queued that are not on the socket yet, shared by the N-API side and the task.
#[derive(Default)]
pub struct Unwritten {
    bytes: AtomicU64,
    want_drain: AtomicBool,
}

impl Unwritten {
    /// Counts a write being queued; returns the bytes unwritten with it.
    pub fn queued(&self, n: usize) -> u64 {
        let after = self.bytes.fetch_add(n as u64, Relaxed) + n as u64;
        if after > DRAIN_ABOVE {
            self.want_drain.store(true, Relaxed);
        }
        after
    }

    /// Counts a write done; true when a 'drain' is due (nothing left, and one was asked for).
    pub(crate) fn written(&self, n: usize) -> bool {
        let left = self.bytes.fetch_sub(n as u64, Relaxed) - n as u64;
        left == 0 && self.want_drain.swap(false, Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the relay's loop does: polls the inbox (unconstrained) until the channel closes.
    async fn receive_all(mut inbox: Inbox) -> usize {
        let mut n = 0;
        loop {
            let next = tokio::task::unconstrained(std::future::poll_fn(|cx| inbox.poll_cheap(cx)));
            match next.await {
                Some(_) => n += 1,
                None => return n,
            }
        }
    }

    #[test]
    fn commands_sent_to_a_waiting_task_wake_it_and_the_close_ends_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, inbox) = commands();
            let task = tokio::spawn(receive_all(inbox));
            for _ in 0..3 {
                // The task is parked on an empty inbox: only the channel's wake-up reaches it.
                tokio::task::yield_now().await;
                assert!(!task.is_finished());
                assert!(tx.send(Cmd::Release));
            }
            tokio::task::yield_now().await;
            drop(tx);
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), task);
            assert_eq!(n.await.expect("the close woke it").unwrap(), 3);
        });
    }

    #[test]
    fn a_waiting_inbox_does_not_ask_the_channel_until_something_was_sent() {
        let (tx, mut inbox) = commands();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(inbox.poll_cheap(&mut cx).is_pending());
        assert!(inbox.waiting);
        assert!(inbox.poll_cheap(&mut cx).is_pending());
        assert!(tx.send(Cmd::End));
        assert!(matches!(
            inbox.poll_cheap(&mut cx),
            Poll::Ready(Some(Cmd::End))
        ));
        assert!(!inbox.waiting, "after a command the channel is asked again");
        assert!(inbox.poll_cheap(&mut cx).is_pending());
        drop(tx);
        assert!(matches!(inbox.poll_cheap(&mut cx), Poll::Ready(None)));
    }
}
