//! Two users chat through a Beckon server.
//!
//! ```text
//! cargo run -p beckon-server                     # the zero-config development server
//! cargo run -p beckon-sdk --example chat         # or: … --example chat -- tcp://host:port
//! ```
//!
//! alice and bob log in with `_no_need_token` (which only a development server, or an app
//! configured to allow it, accepts), alice sends bob a message, bob prints it and replies,
//! alice prints the reply, and both log out.

use std::time::Duration;

use beckon_sdk::{Callbacks, Config, Event, EventStream, Instance};

const APP_ID: &str = "beckon-chat-example";

/// Prints the errors and log lines of one user.
struct Logger(&'static str);

impl Callbacks for Logger {
    fn on_error(&self, name: &str, ecode: i32, desc: &str) {
        eprintln!("[{}] error in {name}: {ecode} {desc}", self.0);
    }
    fn on_log(&self, txt: &str) {
        eprintln!("[{}] {txt}", self.0);
    }
}

type BoxError = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:7400".to_owned());

    let alice = Instance::new(Config::new(&server))?;
    let bob = Instance::new(Config::new(&server))?;
    alice.callback_set(std::sync::Arc::new(Logger("alice")));
    bob.callback_set(std::sync::Arc::new(Logger("bob")));
    let mut alice_events = alice.events();
    let mut bob_events = bob.events();

    alice.login(APP_ID, "alice", "_no_need_token", 0, "");
    bob.login(APP_ID, "bob", "_no_need_token", 0, "");
    for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
        match next_matching(events, |e| {
            matches!(e, Event::LoginSuccess { .. } | Event::LoginFailed { .. })
        })
        .await?
        {
            Event::LoginSuccess { uid, .. } => println!("{who} logged in (uid {uid})"),
            other => {
                return Err(format!("{who} could not log in to {server}: {other:?}").into());
            }
        }
    }

    let id = alice.message_instant_send("bob", 0, "Hi Bob, this is Alice.", "");
    if let Event::MessageInstantReceive { account, msg, .. } = next_matching(&mut bob_events, |e| {
        matches!(e, Event::MessageInstantReceive { .. })
    })
    .await?
    {
        println!("bob received from {account}: {msg}");
        bob.message_instant_send(&account, 0, "Hello Alice! Bob here.", "");
    }
    match next_matching(&mut alice_events, |e| {
        matches!(e, Event::MessageSendSuccess { message_id } | Event::MessageSendError { message_id, .. } if *message_id == id)
    })
    .await?
    {
        Event::MessageSendSuccess { .. } => println!("alice's message {id} was delivered"),
        other => return Err(format!("alice's message failed: {other:?}").into()),
    }
    if let Event::MessageInstantReceive { account, msg, .. } =
        next_matching(&mut alice_events, |e| {
            matches!(e, Event::MessageInstantReceive { .. })
        })
        .await?
    {
        println!("alice received from {account}: {msg}");
    }

    alice.logout();
    bob.logout();
    for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
        if let Event::Logout { ecode } =
            next_matching(events, |e| matches!(e, Event::Logout { .. })).await?
        {
            println!("{who} logged out ({ecode})");
        }
    }
    alice.destroy().await;
    bob.destroy().await;
    Ok(())
}

/// The next event that satisfies `want`, or an error after ten seconds.
async fn next_matching(
    events: &mut EventStream,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, BoxError> {
    let wait = async {
        while let Some(e) = events.next().await {
            if want(&e) {
                return Ok(e);
            }
        }
        Err::<Event, BoxError>("the instance stopped".into())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| "no answer from the server within 10 s")?
}
