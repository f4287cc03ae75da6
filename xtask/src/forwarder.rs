//! The physical reference: a bare tokio forwarder of length-prefixed frames, and its clients.
//!
//! It does what any broker must do at the least — read a frame, find where it goes, write it
//! there — and nothing else: no sessions, no acknowledgements, no validation. It runs as its
//! own process (`xtask forwarder --listen ADDR`, started by the benchmark from the release
//! build and pinned like every server) with tokio's multi-threaded runtime, like
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
use futures_util::FutureExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use beckon_transport::FrameReader;

use crate::load::{Flow, Gate, Payload, Shared, Tally, Tasks};
use crate::procs::{Pinning, Ready, ServerProc};

/// The bit that makes a `dest` a group.
pub(crate) const GROUP: u32 = 0x8000_0000;
/// The largest frame the forwarder or its clients accept.
const MAX_FRAME: usize = 1024 * 1024;
/// Frames queued for one connection before forwarding to it waits.
const QUEUE: usize = 4096;
/// Frames a receiver handles before it commits its tally.
const READ_BATCH: usize = 64;
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

/// `xtask forwarder --listen ADDR`: runs the forwarder until killed.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let addr = match args {
        [flag, addr] if flag == "--listen" => addr.parse::<SocketAddr>(),
        _ => {
            eprintln!("usage: xtask forwarder --listen ADDR");
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

/// A running forwarder process.
#[derive(Debug)]
pub(crate) struct RawServer {
    pub(crate) proc: ServerProc,
    addr: SocketAddr,
}

/// Starts `xtask forwarder` (this very binary) on 127.0.0.1 and a free port.
pub(crate) fn start(pinning: &Pinning) -> Result<RawServer, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the xtask binary: {e}"))?;
    let mut cmd = pinning.command(&exe);
    cmd.args(["forwarder", "--listen", "127.0.0.1:0"]);
    let (proc, printed) = ServerProc::start("forwarder", cmd, Ready::Line(READY_LINE))?;
    let addr = printed
        .parse()
        .map_err(|e| format!("the forwarder printed {printed:?}: {e}"))?;
    Ok(RawServer { proc, addr })
}

/// A connected, welcomed client.
struct RawClient {
    reader: FrameReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
}

impl RawClient {
    async fn connect(addr: SocketAddr, id: u32, groups: &[u32]) -> Result<Self, String> {
        let fail = |e: io::Error| format!("forwarder connection: {e}");
        let stream = TcpStream::connect(addr).await.map_err(fail)?;
        stream.set_nodelay(true).map_err(fail)?;
        let (r, w) = stream.into_split();
        let mut c = RawClient {
            reader: FrameReader::new(r, MAX_FRAME),
            writer: BufWriter::with_capacity(64 * 1024, w),
        };
        let mut hello = id.to_be_bytes().to_vec();
        for g in groups {
            hello.extend_from_slice(&g.to_be_bytes());
        }
        write_frame(&mut c.writer, &hello).await.map_err(fail)?;
        c.writer.flush().await.map_err(fail)?;
        let welcome = c
            .reader
            .read_frame()
            .await
            .map_err(fail)?
            .ok_or("the forwarder closed the connection")?;
        if dest_of(&welcome).map_err(fail)? != id {
            return Err("the forwarder welcomed someone else".into());
        }
        Ok(c)
    }
}

fn receiver(
    server: &RawServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    id: u32,
    groups: Vec<u32>,
    tasks: &mut Tasks,
) {
    let (addr, shared, flow) = (server.addr, shared.clone(), flow.clone());
    tasks.spawn(async move {
        let mut c = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            RawClient::connect(addr, id, &groups).await?
        };
        shared.ready.add_permits(1);
        let mut tally = Tally::new(shared.recorder.clone(), flow);
        let failed = |e: io::Error| format!("forwarder connection: {e}");
        loop {
            let frame = c.reader.read_frame().await.map_err(failed)?;
            let frame = frame.ok_or("the forwarder closed the connection")?;
            tally.add(frame.get(4..).unwrap_or_default());
            for _ in 1..READ_BATCH {
                match c.reader.read_frame().now_or_never() {
                    Some(Ok(Some(frame))) => tally.add(frame.get(4..).unwrap_or_default()),
                    Some(Ok(None)) => return Err("the forwarder closed the connection".into()),
                    Some(Err(e)) => return Err(failed(e)),
                    None => break,
                }
            }
            tally.commit();
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn sender(
    server: &RawServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    id: u32,
    dest: u32,
    per_message: u64,
    window: u64,
    tasks: &mut Tasks,
) {
    let (addr, shared, flow) = (server.addr, shared.clone(), flow.clone());
    tasks.spawn(async move {
        let mut c = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            RawClient::connect(addr, id, &[]).await?
        };
        shared.ready.add_permits(1);
        let mut gate = Gate::new(shared.control.clone(), flow, per_message, window);
        let mut payload = Payload::new();
        let mut frame = dest.to_be_bytes().to_vec();
        let failed = |e: io::Error| format!("forwarder connection: {e}");
        loop {
            let n = gate.quota(gate.delivered());
            if n == 0 {
                gate.changed().await;
                continue;
            }
            for _ in 0..n {
                frame.truncate(4);
                frame.extend_from_slice(payload.stamp());
                write_frame(&mut c.writer, &frame).await.map_err(failed)?;
            }
            c.writer.flush().await.map_err(failed)?;
            gate.sent(n);
        }
    });
}

/// The p2p shape: receivers `1..=pairs`, senders `pairs+1..=2*pairs`.
pub(crate) fn p2p(
    server: &RawServer,
    shared: &Shared,
    pairs: usize,
    window: u64,
    tasks: &mut Tasks,
) {
    for i in 0..pairs as u32 {
        let flow = Arc::new(Flow::default());
        let receiver_id = 1 + i;
        receiver(server, shared, &flow, receiver_id, Vec::new(), tasks);
        let sender_id = 1 + pairs as u32 + i;
        sender(
            server,
            shared,
            &flow,
            sender_id,
            receiver_id,
            1,
            window,
            tasks,
        );
    }
}

/// The fan-out group, and its members `1..=members`.
const FANOUT_GROUP: u32 = GROUP | 1;

/// The fan-out members: clients in one group.
pub(crate) fn fanout_members(
    server: &RawServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    tasks: &mut Tasks,
) {
    for i in 0..members as u32 {
        receiver(server, shared, flow, 1 + i, vec![FANOUT_GROUP], tasks);
    }
}

/// The fan-out publisher (id 0).
pub(crate) fn fanout_publisher(
    server: &RawServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    window: u64,
    tasks: &mut Tasks,
) {
    sender(
        server,
        shared,
        flow,
        0,
        FANOUT_GROUP,
        members as u64,
        window,
        tasks,
    );
}

/// `sessions` welcomed connections, held until aborted.
pub(crate) fn idle(server: &RawServer, shared: &Shared, sessions: usize, tasks: &mut Tasks) {
    for i in 0..sessions as u32 {
        let (addr, shared) = (server.addr, shared.clone());
        tasks.spawn(async move {
            let mut c = {
                let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
                RawClient::connect(addr, 1 + i, &[]).await?
            };
            shared.ready.add_permits(1);
            while let Ok(Some(_)) = c.reader.read_frame().await {}
            Err("the forwarder closed the connection".into())
        });
    }
}
