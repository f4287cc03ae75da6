//! The physical reference: a bare tokio forwarder of length-prefixed frames, and its clients.
//!
//! It does what any broker must do at the least — read a frame, find where it goes, write it
//! there — and nothing else: no sessions, no acknowledgements, no validation. It runs as its
//! own process (`beckon-loadgen forwarder --listen ADDR`, started by the benchmark from its
//! own executable and pinned like every server) with tokio's multi-threaded runtime, like
//! `beckon-server`.
//!
//! Protocol, on TCP: every frame is `[u32 length][u32 dest][payload]`, big-endian, the length
//! counting `dest` and `payload`. A client's first frame is its hello: `dest` is its own id,
//! and the payload lists the groups it joins (one `u32` each, with [`GROUP`] set). The
//! forwarder answers with a welcome frame holding just the client's id, once the client is
//! routable. Every later frame goes, unchanged, to the client `dest`, or to every member of
//! the group `dest`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use beckon_transport::FrameReader;

use crate::cli::{Shape, System};
use crate::driver::{self, Driver, Role};
use crate::load::Payload;
use crate::measure::Ctx;
use crate::net::connect_spread;
use crate::procs::{Ready, ServerProc};

/// The bit that makes a `dest` a group.
pub(crate) const GROUP: u32 = 0x8000_0000;
/// The largest frame the forwarder or its clients accept.
const MAX_FRAME: usize = 1024 * 1024;
/// Frames queued for one connection before forwarding to it waits.
const QUEUE: usize = 4096;
/// The line the forwarder prints once it is listening.
const READY_LINE: &str = "forwarder listening on";

type Route = mpsc::Sender<Bytes>;

/// Who is connected, and the groups.
#[derive(Debug, Default)]
struct Routes {
    clients: RwLock<HashMap<u32, Route>>,
    /// Copy-on-write member lists, so forwarding holds no lock while it sends.
    groups: RwLock<HashMap<u32, Arc<[Route]>>>,
}

/// `beckon-loadgen forwarder --listen ADDR`: runs the forwarder until killed.
pub(crate) fn main(args: &[String]) -> ExitCode {
    const USAGE: &str = "usage: beckon-loadgen forwarder --listen ADDR";
    let addr = match args {
        [flag, addr] if flag == "--listen" => addr.parse::<SocketAddr>(),
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(addr) = addr else {
        eprintln!("forwarder: --listen needs an address like 127.0.0.1:0");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forwarder: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("{READY_LINE} {}", listener.local_addr()?);
    accept(listener).await
}

/// Accepts and serves connections until accepting fails.
async fn accept(listener: TcpListener) -> io::Result<()> {
    let routes = Arc::new(Routes::default());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let routes = routes.clone();
        tokio::spawn(async move {
            // A connection's end, for whatever reason, concerns only that connection.
            let _ = connection(stream, &routes).await;
        });
    }
}

fn dest_of(frame: &[u8]) -> io::Result<u32> {
    frame
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a frame without a dest"))
}

async fn connection(stream: TcpStream, routes: &Routes) -> io::Result<()> {
    let (r, w) = stream.into_split();
    let mut reader = FrameReader::new(r, MAX_FRAME);
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(write_frames(w, rx));
    let hello = reader
        .read_frame()
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no hello"))?;
    let id = dest_of(&hello)?;
    routes
        .clients
        .write()
        .map_err(|_| io::Error::other("poisoned"))?
        .insert(id, tx.clone());
    for g in hello[4..].chunks_exact(4) {
        let g = u32::from_be_bytes([g[0], g[1], g[2], g[3]]);
        let mut groups = routes
            .groups
            .write()
            .map_err(|_| io::Error::other("poisoned"))?;
        let mut members: Vec<Route> = groups.get(&g).map(|m| m.to_vec()).unwrap_or_default();
        members.push(tx.clone());
        groups.insert(g, members.into());
    }
    let _ = tx.send(hello.slice(..4)).await;
    let result = forward(&mut reader, routes).await;
    if let Ok(mut clients) = routes.clients.write() {
        clients.remove(&id);
    }
    result
}

async fn forward(reader: &mut FrameReader<OwnedReadHalf>, routes: &Routes) -> io::Result<()> {
    while let Some(frame) = reader.read_frame().await? {
        let dest = dest_of(&frame)?;
        if dest & GROUP != 0 {
            let members = routes
                .groups
                .read()
                .ok()
                .and_then(|g| g.get(&dest).cloned());
            for m in members.iter().flat_map(|m| m.iter()) {
                queue(m, frame.clone()).await;
            }
        } else {
            let to = routes
                .clients
                .read()
                .ok()
                .and_then(|c| c.get(&dest).cloned());
            if let Some(to) = to {
                queue(&to, frame).await;
            }
        }
    }
    Ok(())
}

/// Queues a frame for a connection, waiting only when its queue is full. (An awaited `send`
/// spends tokio's cooperative budget on every frame and yields every 128 of them, so writers
/// would wake for a frame or two each instead of a batch.) A connection that is gone is
/// skipped.
async fn queue(to: &Route, frame: Bytes) {
    match to.try_send(frame) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(frame)) => {
            let _ = to.send(frame).await;
        }
    }
}

/// Writes through the same batching writer Beckon's server uses (a buffer that exists only
/// between a batch's first frame and its flush), so that neither side of the comparison
/// holds a 64 KiB buffer per idle connection that the other does not.
async fn write_frames(w: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    let mut out = beckon_transport::FrameWriter::new(w);
    while let Some(frame) = rx.recv().await {
        out.write_frame(&frame, &[]).await?;
        // Everything already queued goes out with one flush.
        while let Ok(frame) = rx.try_recv() {
            out.write_frame(&frame, &[]).await?;
        }
        out.flush().await?;
    }
    Ok(())
}

async fn write_frame(out: &mut BufWriter<OwnedWriteHalf>, frame: &[u8]) -> io::Result<()> {
    let len = u32::try_from(frame.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    out.write_all(&len.to_be_bytes()).await?;
    out.write_all(frame).await
}

// ---- the benchmark's side --------------------------------------------------------------------

/// The driver of a running forwarder: its address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw(SocketAddr);

/// The fan-out group.
const FANOUT_GROUP: u32 = GROUP | 1;

/// The id a role says hello with, and the groups it joins: receivers and idle sessions are
/// `1..`, p2p senders follow the receivers, the fan-out publisher is 0 and every member is in
/// [`FANOUT_GROUP`].
fn hello(role: Role) -> (u32, Vec<u32>) {
    let id = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    match role {
        Role::P2pReceiver(i) | Role::Idle(i) => (1 + id(i), Vec::new()),
        Role::P2pSender { pair, pairs } => (1 + id(pairs) + id(pair), Vec::new()),
        Role::FanoutMember(i) => (1 + id(i), vec![FANOUT_GROUP]),
        Role::FanoutPublisher => (0, Vec::new()),
    }
}

/// Where a role's frames go: its pair's receiver, or the fan-out group (an idle session sends
/// nothing).
fn dest(role: Role) -> u32 {
    match role {
        Role::P2pReceiver(pair) | Role::P2pSender { pair, .. } => hello(Role::P2pReceiver(pair)).0,
        Role::FanoutMember(_) | Role::FanoutPublisher => FANOUT_GROUP,
        Role::Idle(_) => hello(role).0,
    }
}

/// A connected, welcomed client.
pub(crate) struct RawClient {
    reader: FrameReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    /// Where its frames go, as the frame's first four bytes.
    frame: Vec<u8>,
}

fn failed(e: io::Error) -> String {
    format!("forwarder connection: {e}")
}

impl RawClient {
    async fn connect(addr: SocketAddr, role: Role) -> Result<Self, String> {
        let (id, groups) = hello(role);
        let stream = connect_spread(addr).await.map_err(failed)?;
        let (r, w) = stream.into_split();
        let mut c = RawClient {
            reader: FrameReader::new(r, MAX_FRAME),
            writer: BufWriter::with_capacity(64 * 1024, w),
            frame: dest(role).to_be_bytes().to_vec(),
        };
        let mut hello = id.to_be_bytes().to_vec();
        for g in groups {
            hello.extend_from_slice(&g.to_be_bytes());
        }
        write_frame(&mut c.writer, &hello).await.map_err(failed)?;
        c.writer.flush().await.map_err(failed)?;
        let welcome = c
            .reader
            .read_frame()
            .await
            .map_err(failed)?
            .ok_or("the forwarder closed the connection")?;
        if dest_of(&welcome).map_err(failed)? != id {
            return Err("the forwarder welcomed someone else".into());
        }
        Ok(c)
    }
}

impl Driver for Raw {
    const SYSTEM: System = System::Raw;
    type Receiver = RawClient;
    type Sender = RawClient;

    /// Starts `beckon-loadgen forwarder` (this very executable) on 127.0.0.1 and a free port.
    fn start(ctx: &Ctx<'_>, _shape: Shape) -> Result<(ServerProc, Self), String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let mut cmd = ctx.server_command(&exe);
        cmd.args(["forwarder", "--listen", "127.0.0.1:0"]);
        let (proc, printed) = ServerProc::start("forwarder", cmd, Ready::Line(READY_LINE))?;
        let addr = printed
            .parse()
            .map_err(|e| format!("the forwarder printed {printed:?}: {e}"))?;
        Ok((proc, Raw(addr)))
    }

    async fn receiver(&self, role: Role) -> Result<RawClient, String> {
        RawClient::connect(self.0, role).await
    }

    async fn sender(&self, role: Role) -> Result<RawClient, String> {
        RawClient::connect(self.0, role).await
    }

    /// The bare loop Beckon's logins are compared with: connect, one frame each way (the
    /// hello and its welcome), close. No credential is checked: this is what the connection
    /// alone costs.
    async fn login(&self, worker: usize) -> Result<(), String> {
        let id = u32::try_from(worker).unwrap_or(u32::MAX >> 1) + 1;
        let mut stream = connect_spread(self.0).await.map_err(failed)?;
        let mut hello = [0u8; 8];
        hello[..4].copy_from_slice(&4u32.to_be_bytes());
        hello[4..].copy_from_slice(&id.to_be_bytes());
        stream.write_all(&hello).await.map_err(failed)?;
        let mut welcome = [0u8; 8];
        stream.read_exact(&mut welcome).await.map_err(failed)?;
        if welcome != hello {
            return Err("the forwarder welcomed someone else".into());
        }
        Ok(())
    }
}

impl driver::Inbox for RawClient {
    type Message = Bytes;

    async fn next(&mut self) -> Result<Bytes, String> {
        match self.reader.read_frame().await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err("the forwarder closed the connection".into()),
            Err(e) => Err(failed(e)),
        }
    }

    fn payload(frame: &Bytes) -> &[u8] {
        frame.get(4..).unwrap_or_default()
    }
}

impl driver::Sender for RawClient {
    async fn send(&mut self, n: u64, payload: &mut Payload) -> Result<(), String> {
        for _ in 0..n {
            self.frame.truncate(4);
            self.frame.extend_from_slice(payload.stamp());
            write_frame(&mut self.writer, &self.frame)
                .await
                .map_err(failed)?;
        }
        self.writer.flush().await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_connection_of_a_shape_has_an_id_of_its_own() {
        let pairs = 5;
        let p2p: Vec<Role> = (0..pairs)
            .flat_map(|pair| [Role::P2pReceiver(pair), Role::P2pSender { pair, pairs }])
            .collect();
        let fanout: Vec<Role> = (0..pairs)
            .map(Role::FanoutMember)
            .chain([Role::FanoutPublisher])
            .collect();
        let idle: Vec<Role> = (0..pairs).map(Role::Idle).collect();
        for shape in [p2p, fanout, idle] {
            let ids: HashSet<u32> = shape.iter().map(|r| hello(*r).0).collect();
            assert_eq!(ids.len(), shape.len(), "{shape:?}");
            assert!(ids.iter().all(|id| id & GROUP == 0));
        }
    }

    #[test]
    fn senders_reach_their_receivers() {
        for pair in 0..5 {
            let sender = Role::P2pSender { pair, pairs: 5 };
            assert_eq!(dest(sender), hello(Role::P2pReceiver(pair)).0);
            assert_ne!(hello(sender).0, dest(sender));
        }
        let (_, groups) = hello(Role::FanoutMember(3));
        assert_eq!(groups, [dest(Role::FanoutPublisher)]);
    }

    #[tokio::test]
    async fn the_forwarder_forwards_to_a_client_and_to_a_group() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw = Raw(listener.local_addr().unwrap());
        let server = tokio::spawn(accept(listener));
        let mut members = Vec::new();
        for i in 0..3 {
            members.push(raw.receiver(Role::FanoutMember(i)).await.unwrap());
        }
        let mut receiver = raw.receiver(Role::P2pReceiver(7)).await.unwrap();
        let mut sender = raw
            .sender(Role::P2pSender { pair: 7, pairs: 8 })
            .await
            .unwrap();
        let mut publisher = raw.sender(Role::FanoutPublisher).await.unwrap();
        let mut payload = Payload::new();
        driver::Sender::send(&mut sender, 2, &mut payload)
            .await
            .unwrap();
        driver::Sender::send(&mut publisher, 1, &mut payload)
            .await
            .unwrap();

        let recorder = Arc::new(crate::load::Recorder::default());
        let mut tally = crate::load::Tally::new(recorder.clone(), Arc::default());
        let deadline = std::time::Duration::from_secs(30);
        tokio::time::timeout(deadline, async {
            while recorder.deliveries() < 2 {
                driver::Receiver::receive(&mut receiver, &mut tally).await?;
                tally.commit();
            }
            for m in &mut members {
                driver::Receiver::receive(m, &mut tally).await?;
                tally.commit();
            }
            Ok::<(), String>(())
        })
        .await
        .expect("the frames arrive")
        .unwrap();
        assert_eq!(
            recorder.deliveries(),
            5,
            "two to the receiver, one to each member"
        );
        // The bare login loop: the welcome comes back, over and over, from other sources.
        for worker in 0..3 {
            raw.login(worker).await.unwrap();
        }
        server.abort();
    }
}
