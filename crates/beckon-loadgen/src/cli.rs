//! The load options: which shapes, against which peers, for how long.
//!
//! ```text
//! p2p|fanout|callgrind|idle|login|all [--transport tcp|quic|ws] [--peers nats,redis,raw]
//!     [--duration 5s] [--rounds 3] [--pairs 16] [--members 1000] [--sessions 10000] [--conns 64]
//!     [--p2p-rate 100000] [--fanout-rate 200000] [--cg-messages 100000] [--cg-fanouts 1000]
//!     [--nodes 1,2]
//! ```
//!
//! One parser for both ends: `cargo xtask bench` compiles this very file (so it checks the
//! options at once, without building the load generator, and without its dependencies), and
//! hands the options on as [`Options::to_args`]; `beckon-loadgen` parses them again. Only the
//! standard library is used here, for that reason. Parsed by hand: the grammar is small.

use std::fmt;
use std::time::Duration;

/// The usage lines of the load shapes, under a `shapes:` heading.
pub(crate) const SHAPES_USAGE: &str = "\
  p2p       pairs of connections, sender to receiver: peak msg/s and server CPU per message,
            server CPU per message at the fixed --p2p-rate, then latency at 50 % of peak
  fanout    one publisher to a channel of members: the same in deliveries, at --fanout-rate
  callgrind server instructions per delivery under valgrind's callgrind, for a fixed
            workload: --cg-messages p2p messages, then --cg-fanouts messages to --members
  idle      logged-in idle sessions: server memory (RSS) per session
  login     token-verified logins/s (connect, log in, log out, close); the bare forwarder's
            column is a bare loop (connect, one frame each way, close)
  all       p2p, fanout, callgrind (first round only), idle and login";

/// The usage of the load options.
pub(crate) const OPTIONS_USAGE: &str = "\
options:
  --transport tcp|quic|ws   Beckon's transport (peers always use their TCP protocol) [tcp]
  --peers LIST              peers beside Beckon, comma-separated: nats,redis,raw [all three];
                            `--peers none` runs Beckon alone
  --duration TIME           length of each measurement, e.g. 5s, 1500ms [5s]
  --rounds N                rounds; the table shows medians [3]
  --pairs N                 p2p sender/receiver pairs [16]
  --members N               fan-out channel members [1000]
  --sessions N              idle sessions [10000]
  --conns N                 concurrent connections of the login shape [64]
  --store ephemeral|durable Beckon's store: in memory, or redb in a temporary data directory
                            (every p2p message written ahead and synced) [ephemeral]
  --p2p-rate N              fixed offered p2p load for server CPU per message, msg/s [100000]
  --fanout-rate N           fixed offered fan-out load, deliveries/s [200000]
  --cg-messages N           p2p messages of the callgrind workload [100000]
  --cg-fanouts N            fan-out messages of the callgrind workload [1000]
  --nodes LIST              Beckon in cluster mode beside the single node, comma-separated node
                            counts from 1 to 4: each N starts N beckon-server nodes sharing one
                            redis-server (--cluster), clients spread over them; none [none]";

/// One load shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    P2p,
    Fanout,
    Callgrind,
    Idle,
    Login,
}

impl Shape {
    pub(crate) const ALL: [Shape; 5] = [
        Shape::P2p,
        Shape::Fanout,
        Shape::Callgrind,
        Shape::Idle,
        Shape::Login,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::P2p => "p2p",
            Shape::Fanout => "fanout",
            Shape::Callgrind => "callgrind",
            Shape::Idle => "idle",
            Shape::Login => "login",
        }
    }
}

/// A system under test: Beckon, Beckon as a cluster of nodes, or one of its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum System {
    Beckon,
    /// `beckon-server` nodes (1 to [`MAX_NODES`]) sharing one `redis-server`.
    Cluster(u8),
    Nats,
    Redis,
    Raw,
}

/// The most nodes `--nodes` starts.
pub(crate) const MAX_NODES: usize = 4;

impl System {
    pub(crate) fn name(self) -> &'static str {
        const CLUSTERS: [&str; MAX_NODES] = ["cluster-1", "cluster-2", "cluster-3", "cluster-4"];
        match self {
            System::Beckon => "beckon",
            System::Cluster(n) => CLUSTERS[usize::from(n).clamp(1, MAX_NODES) - 1],
            System::Nats => "nats",
            System::Redis => "redis",
            System::Raw => "raw",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The transport Beckon is driven over (the peers always speak their own TCP protocols).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Quic,
    Ws,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
            Transport::Ws => "ws",
        }
    }
}

/// What the whole-system benchmark is asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) shapes: Vec<Shape>,
    pub(crate) transport: Transport,
    /// The peers to run beside Beckon, in table order.
    pub(crate) peers: Vec<System>,
    pub(crate) duration: Duration,
    pub(crate) rounds: usize,
    pub(crate) pairs: usize,
    pub(crate) members: usize,
    pub(crate) sessions: usize,
    pub(crate) conns: usize,
    /// Beckon with a durable store (a temporary data directory) instead of `--ephemeral`.
    pub(crate) durable: bool,
    /// The fixed offered load at which server CPU per p2p message is measured, msg/s.
    pub(crate) p2p_rate: usize,
    /// The same for the fan-out, in deliveries/s.
    pub(crate) fanout_rate: usize,
    /// Node counts of Beckon in cluster mode to measure beside the single node.
    pub(crate) nodes: Vec<usize>,
    /// p2p messages of the callgrind workload.
    pub(crate) cg_messages: usize,
    /// Fan-out messages of the callgrind workload (each to every member).
    pub(crate) cg_fanouts: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shapes: Shape::ALL.to_vec(),
            transport: Transport::Tcp,
            peers: vec![System::Nats, System::Redis, System::Raw],
            duration: Duration::from_secs(5),
            rounds: 3,
            pairs: 16,
            members: 1000,
            sessions: 10_000,
            conns: 64,
            durable: false,
            p2p_rate: 100_000,
            fanout_rate: 200_000,
            cg_messages: 100_000,
            cg_fanouts: 1_000,
            nodes: Vec::new(),
        }
    }
}

impl Options {
    /// The options as arguments again, every one spelled out: what `cargo xtask bench` hands
    /// to the load generator, and the command line the report shows.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let shapes: Vec<&str> = self.shapes.iter().map(|s| s.name()).collect();
        let peers: Vec<&str> = self.peers.iter().map(|p| p.name()).collect();
        let peers = if peers.is_empty() {
            "none".to_owned()
        } else {
            peers.join(",")
        };
        let mut args = vec![shapes.join(",")];
        for (flag, value) in [
            ("--transport", self.transport.name().to_owned()),
            ("--peers", peers),
            ("--duration", format!("{}ms", self.duration.as_millis())),
            ("--rounds", self.rounds.to_string()),
            ("--pairs", self.pairs.to_string()),
            ("--members", self.members.to_string()),
            ("--sessions", self.sessions.to_string()),
            ("--conns", self.conns.to_string()),
            (
                "--store",
                (if self.durable { "durable" } else { "ephemeral" }).to_owned(),
            ),
            ("--p2p-rate", self.p2p_rate.to_string()),
            ("--fanout-rate", self.fanout_rate.to_string()),
            ("--cg-messages", self.cg_messages.to_string()),
            ("--cg-fanouts", self.cg_fanouts.to_string()),
        ] {
            args.extend([flag.to_owned(), value]);
        }
        if !self.nodes.is_empty() {
            let nodes: Vec<String> = self.nodes.iter().map(usize::to_string).collect();
            args.extend(["--nodes".to_owned(), nodes.join(",")]);
        }
        args
    }
}

/// What the load options ask for.
#[derive(Debug)]
pub(crate) enum Request {
    /// Run the benchmark.
    Run(Options),
    /// Print the usage (`-h` or `--help` anywhere).
    Help,
}

/// Parses a shape (`p2p`, `all`, or a comma-separated list), then the options.
pub(crate) fn parse(args: &[String]) -> Result<Request, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Request::Help);
    }
    let Some((first, rest)) = args.split_first() else {
        return Err("no load shape given".into());
    };
    let mut opts = Options {
        shapes: parse_shapes(first)?,
        ..Options::default()
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .map(String::as_str)
            .ok_or_else(|| format!("{flag} needs a value"));
        let count = |field: &mut usize| -> Result<(), String> {
            *field = parse_count(flag, value.clone()?)?;
            Ok(())
        };
        match flag.as_str() {
            "--transport" => opts.transport = parse_transport(value?)?,
            "--peers" => opts.peers = parse_peers(value?)?,
            "--nodes" => opts.nodes = parse_nodes(value?)?,
            "--duration" => opts.duration = parse_duration(value?)?,
            "--rounds" => count(&mut opts.rounds)?,
            "--pairs" => count(&mut opts.pairs)?,
            "--members" => count(&mut opts.members)?,
            "--sessions" => count(&mut opts.sessions)?,
            "--conns" => count(&mut opts.conns)?,
            "--store" => {
                opts.durable = match value? {
                    "durable" => true,
                    "ephemeral" => false,
                    other => return Err(format!("--store {other}: use ephemeral or durable")),
                }
            }
            "--p2p-rate" => count(&mut opts.p2p_rate)?,
            "--fanout-rate" => count(&mut opts.fanout_rate)?,
            "--cg-messages" => count(&mut opts.cg_messages)?,
            "--cg-fanouts" => count(&mut opts.cg_fanouts)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Request::Run(opts))
}

fn parse_shapes(s: &str) -> Result<Vec<Shape>, String> {
    let mut shapes = Vec::new();
    for name in s.split(',') {
        let add: &[Shape] = match name {
            "all" => &Shape::ALL,
            "p2p" => &[Shape::P2p],
            "fanout" => &[Shape::Fanout],
            "idle" => &[Shape::Idle],
            "login" => &[Shape::Login],
            "callgrind" => &[Shape::Callgrind],
            other => {
                return Err(format!(
                    "unknown shape {other:?}: use micro, p2p, fanout, callgrind, idle, login or \
                     all"
                ));
            }
        };
        for shape in add {
            if !shapes.contains(shape) {
                shapes.push(*shape);
            }
        }
    }
    Ok(shapes)
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    match s {
        "tcp" => Ok(Transport::Tcp),
        "quic" => Ok(Transport::Quic),
        "ws" => Ok(Transport::Ws),
        other => Err(format!("--transport {other}: use tcp, quic or ws")),
    }
}

fn parse_peers(s: &str) -> Result<Vec<System>, String> {
    let mut peers = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let peer = match name {
            "none" => continue,
            "nats" => System::Nats,
            "redis" => System::Redis,
            "raw" => System::Raw,
            other => {
                return Err(format!(
                    "unknown peer {other:?}: use nats, redis, raw or none"
                ));
            }
        };
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    peers.sort();
    Ok(peers)
}

fn parse_nodes(s: &str) -> Result<Vec<usize>, String> {
    let mut nodes = Vec::new();
    for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match n.parse::<usize>() {
            Ok(n) if (1..=MAX_NODES).contains(&n) => {
                if !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
            _ => {
                return Err(format!(
                    "--nodes {s}: expected node counts from 1 to {MAX_NODES}, e.g. 1,2"
                ));
            }
        }
    }
    nodes.sort_unstable();
    Ok(nodes)
}

fn parse_count(flag: &str, s: &str) -> Result<usize, String> {
    match s.replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {s}: expected a whole number above 0")),
    }
}

/// `5s`, `1500ms`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("--duration {s}: expected e.g. 5s, 1500ms or 2m");
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("--duration {s}: must be between 100ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn options(s: &str) -> Result<Options, String> {
        match parse(&args(s))? {
            Request::Run(o) => Ok(o),
            Request::Help => Err("help".into()),
        }
    }

    #[test]
    fn load_options_round_trip() {
        let o = options(
            "all --transport ws --peers raw,nats --duration 3s --rounds 1 --pairs 4 \
             --members 100 --sessions 500 --conns 8 --p2p-rate 5000 --fanout-rate 9000 \
             --cg-messages 700 --cg-fanouts 30 --nodes 2,1,2",
        )
        .unwrap();
        assert_eq!(o.shapes, Shape::ALL);
        assert_eq!(o.transport, Transport::Ws);
        assert_eq!(o.peers, [System::Nats, System::Raw]);
        assert_eq!(o.duration, Duration::from_secs(3));
        assert_eq!(
            (o.rounds, o.pairs, o.members, o.sessions, o.conns),
            (1, 4, 100, 500, 8)
        );
        assert_eq!(
            (o.p2p_rate, o.fanout_rate, o.cg_messages, o.cg_fanouts),
            (5000, 9000, 700, 30)
        );
        assert_eq!(o.nodes, [1, 2]);
        let Ok(Request::Run(again)) = parse(&o.to_args()) else {
            panic!("to_args should parse");
        };
        assert_eq!(format!("{again:?}"), format!("{o:?}"));
        let defaults = options("p2p,idle,p2p").unwrap();
        assert_eq!(defaults.shapes, [Shape::P2p, Shape::Idle]);
        assert_eq!(
            format!("{:?}", options(&defaults.to_args().join(" ")).unwrap()),
            format!("{defaults:?}")
        );
    }

    #[test]
    fn help_anywhere() {
        assert!(matches!(parse(&args("--help")), Ok(Request::Help)));
        assert!(matches!(parse(&args("p2p -h")), Ok(Request::Help)));
        assert!(matches!(
            parse(&args("p2p --rounds 2 --help")),
            Ok(Request::Help)
        ));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |s: &str| options(s).unwrap_err();
        assert!(err("p3p").contains("unknown shape"));
        assert!(err("p2p --transport tls").contains("tcp, quic or ws"));
        assert!(err("p2p --rounds 0").contains("--rounds"));
        assert!(err("p2p --conns many").contains("--conns many"));
        assert!(err("p2p --duration").contains("needs a value"));
        assert!(err("p2p --pairs").contains("needs a value"));
        assert!(err("p2p --rate 5").contains("unknown option"));
        assert!(err("p2p --p2p-rate 0").contains("--p2p-rate"));
        assert!(err("p2p --peers kafka").contains("unknown peer"));
        assert!(parse(&[]).unwrap_err().contains("no load shape"));
        assert!(options("p2p --peers none").unwrap().peers.is_empty());
        assert!(err("p2p --nodes 5").contains("from 1 to 4"));
        assert!(err("p2p --nodes 0").contains("from 1 to 4"));
        assert!(err("p2p --nodes two").contains("--nodes two"));
        assert!(options("p2p").unwrap().nodes.is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
