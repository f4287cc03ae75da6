//! NATS under the same loads: `nats-server` (Debian package `nats-server`) as a child process on
//! a free port, driven with the `async-nats` client.
//!
//! A p2p pair is a subscriber to `p2p.<i>` and a publisher to it, each on its own connection;
//! the fan-out is `members` subscribers of one subject and a publisher; an idle session is a
//! connection with one subscription; a login is a connection authenticated with a token
//! (`nats-server --auth`, which compares a shared secret: no signature is verified).

use std::sync::Arc;

use async_nats::{Client, ConnectOptions, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::cli::{Shape, System};
use crate::driver::{self, Driver, Role};
use crate::load::Payload;
use crate::measure::Ctx;
use crate::procs::{self, ServerProc};

/// The token `nats-server --auth` is started with for the login shape.
const TOKEN: &str = "bench-token-0123456789abcdef";

/// The driver of a running `nats-server`: its URL, and the token it requires, if any.
#[derive(Clone, Debug)]
pub(crate) struct Nats {
    url: Arc<str>,
    token: Option<&'static str>,
}

impl Nats {
    async fn connect(&self) -> Result<Client, String> {
        let options = match self.token {
            Some(t) => ConnectOptions::with_token(t.to_owned()),
            None => ConnectOptions::new(),
        };
        options
            .connect(&*self.url)
            .await
            .map_err(|e| format!("cannot connect to nats-server: {e}"))
    }
}

/// A subscriber, with the connection it needs.
#[derive(Debug)]
pub(crate) struct NatsReceiver {
    _client: Client,
    sub: Subscriber,
}

/// A publisher to one subject.
#[derive(Debug)]
pub(crate) struct NatsSender {
    client: Client,
    subject: Subject,
}

impl Driver for Nats {
    const SYSTEM: System = System::Nats;
    type Receiver = NatsReceiver;
    type Sender = NatsSender;

    /// Starts `nats-server` on 127.0.0.1 and a free port; for the login shape it requires a
    /// token.
    fn start(ctx: &Ctx<'_>, shape: Shape) -> Result<(ServerProc, Self), String> {
        let bin = ctx.peer_bin(Self::SYSTEM)?;
        let token = (shape == Shape::Login).then_some(TOKEN);
        let (proc, port) = procs::start_on_free_port("nats-server", |port| {
            let mut cmd = ctx.server_command(bin);
            cmd.args(["-a", "127.0.0.1", "-p", port]);
            if let Some(token) = token {
                cmd.args(["--auth", token]);
            }
            cmd
        })?;
        let url = format!("nats://127.0.0.1:{port}").into();
        Ok((proc, Nats { url, token }))
    }

    /// Connects, subscribes to the role's subject, and makes sure the server has the
    /// subscription.
    async fn receiver(&self, role: Role) -> Result<NatsReceiver, String> {
        let client = self.connect().await?;
        let sub = client
            .subscribe(role.topic())
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        client
            .flush()
            .await
            .map_err(|e| format!("cannot flush: {e}"))?;
        Ok(NatsReceiver {
            _client: client,
            sub,
        })
    }

    async fn sender(&self, role: Role) -> Result<NatsSender, String> {
        Ok(NatsSender {
            client: self.connect().await?,
            subject: Subject::from(role.topic()),
        })
    }

    /// Connects with the token (the server checks it) and closes again: `connect` returns
    /// once the server answered CONNECT + PING with PONG, so the token has been checked.
    async fn login(&self, _worker: usize) -> Result<(), String> {
        drop(self.connect().await?);
        Ok(())
    }
}

impl driver::Inbox for NatsReceiver {
    type Message = async_nats::Message;

    async fn next(&mut self) -> Result<async_nats::Message, String> {
        self.sub.next().await.ok_or("the subscription ended".into())
    }

    fn payload(message: &async_nats::Message) -> &[u8] {
        &message.payload
    }
}

impl driver::Sender for NatsSender {
    async fn send(&mut self, n: u64, payload: &mut Payload) -> Result<(), String> {
        for _ in 0..n {
            let body = Bytes::copy_from_slice(payload.stamp());
            self.client
                .publish(self.subject.clone(), body)
                .await
                .map_err(|e| format!("cannot publish: {e}"))?;
        }
        Ok(())
    }
}
