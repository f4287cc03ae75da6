//! The command line of `cargo xtask bench`: which shapes, against which peers, for how long.
//!
//! ```text
//! cargo xtask bench [micro] [-- <criterion args>]
//! cargo xtask bench p2p|fanout|idle|login|all [--transport tcp|quic|ws] [--peers nats,redis,raw]
//!                   [--duration 5s] [--rounds 3] [--pairs 16] [--members 1000]
//!                   [--sessions 10000] [--conns 64]
//! ```
//!
//! Parsed by hand: the grammar is small, and the xtask should build quickly.

use std::fmt;
use std::time::Duration;

use beckon_transport::Scheme;

/// The usage text printed for `--help` and after a parse error.
pub(crate) const USAGE: &str = "\
usage: cargo xtask bench [micro] [-- <criterion args>]
       cargo xtask bench rtt
       cargo xtask bench p2p|fanout|idle|login|all [options]

shapes:
  micro     the criterion micro-benchmarks (the default)
  rtt       p2p round trip through the SDK over every transport: median, p99, p999
            (BECKON_RTT_ROUNDS round trips per transport, 5,000 by default)
  p2p       pairs of connections, sender to receiver: peak msg/s, then latency at 50 % of peak
  fanout    one publisher to a channel of members: peak deliveries/s, then latency at 50 %
  idle      logged-in idle sessions: server memory (RSS) per session
  login     token-verified logins/s (connect, log in, log out, close)
  all       p2p, fanout, idle and login

options:
  --transport tcp|quic|ws   Beckon's transport (peers always use their TCP protocol) [tcp]
  --peers LIST              peers beside Beckon, comma-separated: nats,redis,raw [all three];
                            `--peers none` runs Beckon alone
  --duration TIME           length of each measurement, e.g. 5s, 1500ms [5s]
  --rounds N                rounds; the table shows medians [3]
  --pairs N                 p2p sender/receiver pairs [16]
  --members N               fan-out channel members [1000]
  --sessions N              idle sessions [10000]
  --conns N                 concurrent connections of the login shape [64]";

/// One load shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    P2p,
    Fanout,
    Idle,
    Login,
}

impl Shape {
    pub(crate) const ALL: [Shape; 4] = [Shape::P2p, Shape::Fanout, Shape::Idle, Shape::Login];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::P2p => "p2p",
            Shape::Fanout => "fanout",
            Shape::Idle => "idle",
            Shape::Login => "login",
        }
    }
}

/// A system under test: Beckon or one of its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum System {
    Beckon,
    Nats,
    Redis,
    Raw,
}

impl System {
    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Beckon => "beckon",
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

/// What the whole-system benchmark is asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) shapes: Vec<Shape>,
    pub(crate) transport: Scheme,
    /// The peers to run beside Beckon, in table order.
    pub(crate) peers: Vec<System>,
    pub(crate) duration: Duration,
    pub(crate) rounds: usize,
    pub(crate) pairs: usize,
    pub(crate) members: usize,
    pub(crate) sessions: usize,
    pub(crate) conns: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shapes: Shape::ALL.to_vec(),
            transport: Scheme::Tcp,
            peers: vec![System::Nats, System::Redis, System::Raw],
            duration: Duration::from_secs(5),
            rounds: 3,
            pairs: 16,
            members: 1000,
            sessions: 10_000,
            conns: 64,
        }
    }
}

impl Options {
    /// The options as arguments again, for handing them to the release build of the xtask.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let shapes: Vec<&str> = self.shapes.iter().map(|s| s.name()).collect();
        let peers: Vec<&str> = self.peers.iter().map(|p| p.name()).collect();
        vec![
            shapes.join(","),
            "--transport".into(),
            self.transport.as_str().into(),
            "--peers".into(),
            if peers.is_empty() {
                "none".into()
            } else {
                peers.join(",")
            },
            "--duration".into(),
            format!("{}ms", self.duration.as_millis()),
            "--rounds".into(),
            self.rounds.to_string(),
            "--pairs".into(),
            self.pairs.to_string(),
            "--members".into(),
            self.members.to_string(),
            "--sessions".into(),
            self.sessions.to_string(),
            "--conns".into(),
            self.conns.to_string(),
        ]
    }
}

/// What `cargo xtask bench …` asks for.
#[derive(Debug)]
pub(crate) enum Bench {
    /// The criterion micro-benchmarks, with these extra arguments for `cargo bench`.
    Micro(Vec<String>),
    /// The whole-system load benchmark.
    Load(Options),
}

/// Parses the arguments after `bench`.
pub(crate) fn parse_bench(args: &[String]) -> Result<Bench, String> {
    let (first, rest) = match args.split_first() {
        None => return Ok(Bench::Micro(Vec::new())),
        Some((first, rest)) => (first.as_str(), rest),
    };
    match first {
        "--" => return Ok(Bench::Micro(args.to_vec())),
        "micro" => return Ok(Bench::Micro(rest.to_vec())),
        "rtt" => {
            let mut args = vec!["--bench".to_owned(), "rtt".to_owned()];
            args.extend(rest.iter().cloned());
            return Ok(Bench::Micro(args));
        }
        "-h" | "--help" => return Err(String::new()),
        _ => {}
    }
    let mut opts = Options {
        shapes: parse_shapes(first)?,
        ..Options::default()
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--transport" => {
                opts.transport = match value()? {
                    "tcp" => Scheme::Tcp,
                    "quic" => Scheme::Quic,
                    "ws" => Scheme::Ws,
                    other => return Err(format!("--transport {other}: use tcp, quic or ws")),
                }
            }
            "--peers" => opts.peers = parse_peers(value()?)?,
            "--duration" => opts.duration = parse_duration(value()?)?,
            "--rounds" => opts.rounds = parse_count("--rounds", value()?)?,
            "--pairs" => opts.pairs = parse_count("--pairs", value()?)?,
            "--members" => opts.members = parse_count("--members", value()?)?,
            "--sessions" => opts.sessions = parse_count("--sessions", value()?)?,
            "--conns" => opts.conns = parse_count("--conns", value()?)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Bench::Load(opts))
}

/// `p2p`, `all`, or a comma-separated list (the form the launcher hands on).
fn parse_shapes(s: &str) -> Result<Vec<Shape>, String> {
    let mut shapes = Vec::new();
    for name in s.split(',') {
        let add: &[Shape] = match name {
            "all" => &Shape::ALL,
            "p2p" => &[Shape::P2p],
            "fanout" => &[Shape::Fanout],
            "idle" => &[Shape::Idle],
            "login" => &[Shape::Login],
            other => {
                return Err(format!(
                    "unknown shape {other:?}: use micro, p2p, fanout, idle, login or all"
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

fn parse_count(flag: &str, s: &str) -> Result<usize, String> {
    match s.replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {s}: expected a whole number above 0")),
    }
}

/// `5s`, `1500ms`, `2m`, or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
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

    #[test]
    fn rtt_runs_the_round_trip_bench() {
        assert!(
            matches!(parse_bench(&args("rtt")), Ok(Bench::Micro(a)) if a == ["--bench", "rtt"])
        );
    }

    #[test]
    fn no_shape_is_micro() {
        assert!(matches!(parse_bench(&[]), Ok(Bench::Micro(a)) if a.is_empty()));
        assert!(matches!(parse_bench(&args("-- --quick")), Ok(Bench::Micro(a)) if a.len() == 2));
        assert!(
            matches!(parse_bench(&args("micro -- --quick")), Ok(Bench::Micro(a)) if a.len() == 2)
        );
    }

    #[test]
    fn load_options_round_trip() {
        let Ok(Bench::Load(o)) = parse_bench(&args(
            "all --transport ws --peers raw,nats --duration 3s --rounds 1 --pairs 4 \
             --members 100 --sessions 500 --conns 8",
        )) else {
            panic!("should parse");
        };
        assert_eq!(o.shapes, Shape::ALL);
        assert_eq!(o.transport, Scheme::Ws);
        assert_eq!(o.peers, [System::Nats, System::Raw]);
        assert_eq!(o.duration, Duration::from_secs(3));
        assert_eq!(
            (o.rounds, o.pairs, o.members, o.sessions, o.conns),
            (1, 4, 100, 500, 8)
        );
        let Ok(Bench::Load(again)) = parse_bench(&o.to_args()) else {
            panic!("to_args should parse");
        };
        assert_eq!(format!("{again:?}"), format!("{o:?}"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            parse_bench(&args("p3p"))
                .unwrap_err()
                .contains("unknown shape")
        );
        assert!(
            parse_bench(&args("p2p --transport tls"))
                .unwrap_err()
                .contains("tcp, quic or ws")
        );
        assert!(
            parse_bench(&args("p2p --rounds 0"))
                .unwrap_err()
                .contains("--rounds")
        );
        assert!(
            parse_bench(&args("p2p --duration"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse_bench(&args("p2p --peers kafka")).is_err());
        assert!(
            matches!(parse_bench(&args("p2p --peers none")), Ok(Bench::Load(o)) if o.peers.is_empty())
        );
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
