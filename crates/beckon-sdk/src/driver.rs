//! The driver: the one task per [`Instance`](crate::Instance) that owns its sans-IO
//! [`Client`] and carries out what the client asks.
//!
//! Like quinn's connection driver, it waits for the next input — an API call (a closure over
//! the client), a frame (or the end of the connection) from the reader task, the completion of a
//! connection attempt, or the client's one timer — hands it to the client with the current time,
//! then drains the client's outputs in the documented order: connection commands, frames to
//! send, events. Ready inputs are taken in batches of up to [`BATCH`]; frames are written to the
//! connection's buffer as they come out and the buffer is flushed once per batch, so a burst of
//! sends or received messages costs one system call, not one per frame.
//!
//! The driver is the client's only writer: there is no lock around the client. The `Instance`
//! reaches it only through the command channel, and learns its status through an atomic the
//! driver updates after every step.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use beckon_client::{Client, ConnectionCommand, Event, Status};
use beckon_transport::{ClientTls, Endpoint, FrameRx, FrameTx};

use crate::callbacks::{Callbacks, dispatch};

/// Inputs handled back to back before the write buffer is flushed.
const BATCH: usize = 256;
/// Frames the reader task may have forwarded before it waits for the driver: enough to keep
/// the driver busy, few enough that a flood from the server is held back by TCP.
const READ_QUEUE: usize = 1024;
/// How long closing a connection may spend sending its last frames.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `destroy` waits for the logout to complete.
pub(crate) const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);

/// A call on the client, run on the driver task with the time the driver took it. API methods
/// and questions alike are closures: a question sends its answer through a channel it captured.
pub(crate) type ClientOp = Box<dyn FnOnce(&mut Client, Instant) + Send>;

/// What an [`Instance`](crate::Instance) asks of its driver.
pub(crate) enum Command {
    /// A call on the client.
    Client(ClientOp),
    /// A login call: afterwards the status is published even if unchanged (see
    /// [`Driver::publish_status`]).
    Login(ClientOp),
    SetCallbacks(Arc<dyn Callbacks>),
    Subscribe(mpsc::UnboundedSender<Event>),
    /// Log out if need be, then stop; the sender is told when the driver is done.
    Destroy(oneshot::Sender<()>),
}

/// What the reader task of a connection reports. `generation` names the connection, so reports
/// of a connection the driver has already closed are recognised and ignored.
#[derive(Debug)]
enum IoEvent {
    Frame { generation: u64, payload: Bytes },
    Lost { generation: u64, reason: String },
}

/// One input of the driver loop.
enum Input {
    Command(Command),
    /// Every `Instance` handle is gone.
    CommandsClosed,
    Io(IoEvent),
    Connected(io::Result<(FrameRx, FrameTx)>),
    Timeout,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<(FrameRx, FrameTx)>> + Send>>;

/// The connection as the driver sees it.
enum Link {
    Idle,
    Connecting(ConnectFuture),
    Up {
        writer: FrameTx,
        _reader: ReaderTask,
    },
}

/// The reader task of a connection; dropping it stops the task.
struct ReaderTask(JoinHandle<()>);

impl Drop for ReaderTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Destroying {
    deadline: Instant,
    done: oneshot::Sender<()>,
}

/// How the driver reaches the server: the URLs, tried in turn, and the settings of an attempt.
pub(crate) struct Dialer {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) tls: ClientTls,
    pub(crate) max_frame: usize,
    pub(crate) timeout: Duration,
    /// Attempts made so far; the next one takes the URL after the last one's.
    pub(crate) attempts: usize,
}

impl Dialer {
    /// The URL of the next attempt, and the attempt itself: connect, bounded by the timeout.
    fn dial(&mut self) -> (Endpoint, ConnectFuture) {
        // Each attempt takes the next URL, so a reconnect can move to another transport.
        let endpoint = self.endpoints[self.attempts % self.endpoints.len()].clone();
        self.attempts += 1;
        let (target, tls, max_frame, timeout) = (
            endpoint.clone(),
            self.tls.clone(),
            self.max_frame,
            self.timeout,
        );
        let attempt = Box::pin(async move {
            let connect = beckon_transport::connect(&target, &tls, max_frame);
            match tokio::time::timeout(timeout, connect).await {
                Ok(r) => r.map_err(io::Error::from),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connecting timed out",
                )),
            }
        });
        (endpoint, attempt)
    }

    /// The URL of the latest attempt.
    fn last(&self) -> &Endpoint {
        let n = self.endpoints.len();
        &self.endpoints[(self.attempts + n - 1) % n]
    }
}

pub(crate) struct Driver {
    client: Client,
    dialer: Dialer,
    commands: mpsc::UnboundedReceiver<Command>,
    io_tx: mpsc::Sender<IoEvent>,
    io_rx: mpsc::Receiver<IoEvent>,
    status: Arc<AtomicI32>,
    /// The status last written to `status`.
    published: i32,
    /// A login command was handled: write the status even if unchanged.
    confirm_status: bool,
    callbacks: Option<Arc<dyn Callbacks>>,
    subscribers: Vec<mpsc::UnboundedSender<Event>>,
    link: Link,
    /// Number of the latest connection attempt.
    generation: u64,
    /// Frames were written since the last flush.
    unflushed: bool,
    destroying: Option<Destroying>,
}

impl Driver {
    pub(crate) fn new(
        client: Client,
        dialer: Dialer,
        commands: mpsc::UnboundedReceiver<Command>,
        status: Arc<AtomicI32>,
    ) -> Self {
        let (io_tx, io_rx) = mpsc::channel(READ_QUEUE);
        let published = client.status() as i32;
        Self {
            client,
            dialer,
            commands,
            io_tx,
            io_rx,
            status,
            published,
            confirm_status: false,
            callbacks: None,
            subscribers: Vec::new(),
            link: Link::Idle,
            generation: 0,
            unflushed: false,
            destroying: None,
        }
    }

    /// Runs until the instance is destroyed or dropped.
    pub(crate) async fn run(mut self) {
        'run: loop {
            let input = self.next_input().await;
            let mut input = Some(input);
            for _ in 0..BATCH {
                let Some(i) = input.take().or_else(|| self.try_input()) else {
                    break;
                };
                if matches!(i, Input::CommandsClosed) {
                    break 'run;
                }
                self.handle(i).await;
            }
            self.flush().await;
            if self.destroy_finished() {
                break;
            }
        }
        self.stop();
    }

    // ---- inputs -------------------------------------------------------------------------------

    async fn next_input(&mut self) -> Input {
        let deadline = self.deadline().map(tokio::time::Instant::from_std);
        let link = &mut self.link;
        let connect = async move {
            match link {
                Link::Connecting(attempt) => attempt.await,
                _ => std::future::pending().await,
            }
        };
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = self.commands.recv() => c.map_or(Input::CommandsClosed, Input::Command),
            // The driver holds a sender, so the channel never closes.
            Some(io) = self.io_rx.recv() => Input::Io(io),
            r = connect => Input::Connected(r),
            () = timer => Input::Timeout,
        }
    }

    /// An input that is ready now, if any: connection reports first, as they free the server's
    /// resources (acknowledgements) and carry the answers to earlier commands.
    fn try_input(&mut self) -> Option<Input> {
        if let Ok(io) = self.io_rx.try_recv() {
            return Some(Input::Io(io));
        }
        match self.commands.try_recv() {
            Ok(c) => Some(Input::Command(c)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Input::CommandsClosed),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let destroy = self.destroying.as_ref().map(|d| d.deadline);
        match (self.client.poll_timeout(), destroy) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Command(c) => self.command(c, now),
            Input::CommandsClosed => {}
            Input::Io(IoEvent::Frame {
                generation,
                payload,
            }) => {
                if self.is_current(generation) {
                    self.client.handle_frame(&payload, now);
                }
            }
            Input::Io(IoEvent::Lost { generation, reason }) => {
                if self.is_current(generation) {
                    self.log(format!("connection lost: {reason}"));
                    self.link = Link::Idle;
                    self.client.handle_disconnected(now);
                }
            }
            Input::Connected(Ok((reader, writer))) => {
                let reader = tokio::spawn(read_frames(reader, self.generation, self.io_tx.clone()));
                self.link = Link::Up {
                    writer,
                    _reader: ReaderTask(reader),
                };
                self.client.handle_connected(now);
            }
            Input::Connected(Err(e)) => {
                let url = self.dialer.last().to_string();
                self.log(format!("could not connect to {url}: {e}"));
                self.link = Link::Idle;
                self.client.handle_disconnected(now);
            }
            Input::Timeout => self.client.handle_timeout(now),
        }
        self.drain().await;
    }

    fn is_current(&self, generation: u64) -> bool {
        generation == self.generation && matches!(self.link, Link::Up { .. })
    }

    fn command(&mut self, c: Command, now: Instant) {
        match c {
            Command::Client(op) => op(&mut self.client, now),
            Command::Login(op) => {
                op(&mut self.client, now);
                self.confirm_status = true;
            }
            Command::SetCallbacks(cb) => self.callbacks = Some(cb),
            Command::Subscribe(tx) => self.subscribers.push(tx),
            Command::Destroy(done) => {
                if self.client.status() != Status::NotLoggedIn {
                    self.client.logout(now);
                }
                self.destroying = Some(Destroying {
                    deadline: now + DESTROY_TIMEOUT,
                    done,
                });
            }
        }
    }

    // ---- outputs ------------------------------------------------------------------------------

    /// Carries out everything the client has asked for since the last input.
    async fn drain(&mut self) {
        loop {
            while let Some(cmd) = self.client.poll_connection() {
                match cmd {
                    ConnectionCommand::Open => self.open(),
                    ConnectionCommand::Close => self.close(),
                }
            }
            let written = self.write_transmits().await;
            // Before the events, so a callback (or a stream reader woken by the event) sees
            // the status the event leads to.
            self.publish_status();
            while let Some(ev) = self.client.poll_event() {
                self.emit(ev);
            }
            match written {
                Ok(()) => break,
                // The client reacts to the loss with more outputs; carry those out too.
                Err(e) => self.connection_failed(&e),
            }
        }
    }

    fn open(&mut self) {
        // A client opens only after closing; drop any leftover connection all the same.
        self.close();
        self.generation += 1;
        let (endpoint, attempt) = self.dialer.dial();
        self.log(format!("connecting to {endpoint}"));
        self.link = Link::Connecting(attempt);
    }

    /// Closes the connection after sending what the client queued for it (the client wants
    /// its last acknowledgement delivered). Not reported back to the client.
    fn close(&mut self) {
        self.unflushed = false;
        match std::mem::replace(&mut self.link, Link::Idle) {
            Link::Up {
                mut writer,
                _reader: reader,
            } => {
                drop(reader); // Stops reading at once: nothing more is wanted from this connection.
                let last: Vec<Bytes> = std::iter::from_fn(|| self.client.poll_transmit()).collect();
                // Sending happens off the driver so a stalled peer cannot hold the instance up.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async move {
                        for f in &last {
                            writer.write_frame(f, &[]).await?;
                        }
                        writer.shutdown().await
                    })
                    .await;
                });
            }
            Link::Connecting(_) | Link::Idle => {}
        }
    }

    async fn write_transmits(&mut self) -> io::Result<()> {
        while let Some(frame) = self.client.poll_transmit() {
            match &mut self.link {
                Link::Up { writer, .. } => {
                    writer.write_frame(&frame, &[]).await?;
                    self.unflushed = true;
                }
                // The client transmits only on a connection it was told is up.
                Link::Idle | Link::Connecting(_) => {
                    tracing::debug!("dropping a {}-byte frame: no connection", frame.len())
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) {
        if !std::mem::take(&mut self.unflushed) {
            return;
        }
        let Link::Up { writer, .. } = &mut self.link else {
            return;
        };
        if let Err(e) = writer.flush().await {
            self.connection_failed(&e);
            self.drain().await;
        }
    }

    /// Writing failed: the connection is gone.
    fn connection_failed(&mut self, e: &io::Error) {
        self.log(format!("connection lost: {e}"));
        self.unflushed = false;
        self.link = Link::Idle;
        self.client.handle_disconnected(Instant::now());
    }

    /// Hands an event to the callbacks, then to every live subscriber.
    fn emit(&mut self, ev: Event) {
        if let Event::Log { txt } = &ev {
            tracing::debug!(target: "beckon_sdk::client", "{txt}");
        }
        if let Some(cb) = &self.callbacks {
            let cb = cb.as_ref();
            // A panicking callback must not take the instance down with it.
            if std::panic::catch_unwind(AssertUnwindSafe(|| dispatch(cb, &ev))).is_err() {
                tracing::error!("a beckon_sdk callback panicked while handling {ev:?}");
            }
        }
        if let Some((last, rest)) = self.subscribers.split_last() {
            let mut closed = false;
            for s in rest {
                closed |= s.send(ev.clone()).is_err();
            }
            closed |= last.send(ev).is_err();
            if closed {
                self.subscribers.retain(|s| !s.is_closed());
            }
        }
    }

    /// A line for `onLog` (and tracing) from the driver itself.
    fn log(&mut self, txt: String) {
        self.emit(Event::Log { txt });
    }

    /// Publishes the client's status for `get_status`. After a login command it is always
    /// written, confirming or correcting the early "logging in" that `login` sets on the
    /// caller's side; otherwise only a change is, so that early value is not overwritten before
    /// the login command arrives.
    fn publish_status(&mut self) {
        let s = self.client.status() as i32;
        if std::mem::take(&mut self.confirm_status) || s != self.published {
            self.published = s;
            self.status.store(s, Ordering::Release);
        }
    }

    // ---- stopping -----------------------------------------------------------------------------

    /// Whether a `destroy` has run its course (logged out, or waited long enough).
    fn destroy_finished(&self) -> bool {
        self.destroying.as_ref().is_some_and(|d| {
            self.client.status() == Status::NotLoggedIn || Instant::now() >= d.deadline
        })
    }

    fn stop(mut self) {
        self.close();
        self.status
            .store(Status::NotLoggedIn as i32, Ordering::Release);
        if let Some(d) = self.destroying.take() {
            let _ = d.done.send(());
        }
    }
}

/// The reader task: forwards each frame of the connection, then how it ended.
async fn read_frames(mut reader: FrameRx, generation: u64, to_driver: mpsc::Sender<IoEvent>) {
    let reason = loop {
        match reader.read_frame().await {
            Ok(Some(payload)) => {
                let ev = IoEvent::Frame {
                    generation,
                    payload,
                };
                if to_driver.send(ev).await.is_err() {
                    return; // The driver is gone.
                }
            }
            Ok(None) => break "closed by the server".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = to_driver.send(IoEvent::Lost { generation, reason }).await;
}
