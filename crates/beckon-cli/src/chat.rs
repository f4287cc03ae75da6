//! `beckon chat`: a terminal client in the spirit of the seeds' console demos.
//!
//! It reads commands and messages from stdin, one per line, and prints what happens on stdout,
//! one line per event, so a person can type and a script can drive it through a pipe. A line
//! that does not start with `/` is a message to the current target: the peer of `/to`, or the
//! channel of the last `/join`. The end of stdin logs out and exits, as `/quit` does.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

use beckon_sdk::{Event, EventStream, Instance};

use crate::code_name;
use crate::connect::{LoginArgs, await_login};

const HELP: &str = "\
commands:
  /to NAME                 send the next lines to NAME
  /join CHANNEL            join CHANNEL and send the next lines to it
  /leave [CHANNEL]         leave CHANNEL (default: the current one)
  /members                 the current channel's members
  /status NAME             whether NAME is online
  /attr NAME VALUE         set one of your attributes (an empty VALUE deletes it)
  /attrs [ACCOUNT]         an account's attributes (default: yours)
  /call NAME [CHANNEL]     call NAME (on CHANNEL, default call-<you>-<NAME>)
  /accept  /refuse         answer the last call you received
  /end                     end the current call
  /dtmf DIGITS             send DTMF digits in the current call
  /help                    this list
  /quit                    log out and exit (so does the end of input)
anything else is a message to the current target";

/// How long `/quit` waits for the logout to be confirmed.
const LOGOUT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The server, e.g. tcp://127.0.0.1:7400, quic://…, ws://127.0.0.1:7401/ws.
    #[arg(long, default_value = "tcp://127.0.0.1:7400")]
    url: String,
    /// The account to log in as.
    #[arg(long)]
    account: String,
    #[command(flatten)]
    login: LoginArgs,
}

/// Where plain lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Peer(String),
    Channel(String),
}

/// A call as this side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    channel: String,
    peer: String,
}

struct Chat {
    sdk: Instance,
    me: String,
    target: Option<Target>,
    /// The channels joined, with their members as events report them.
    channels: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// The last invitation received and not answered.
    ringing: Option<Call>,
    /// The call placed or accepted.
    call: Option<Call>,
}

pub(crate) async fn run(args: ChatArgs) -> ExitCode {
    let token = match args.login.token_for(&args.account) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("beckon chat: {why}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let (sdk, mut events) = match args.login.instance(&args.url) {
        Ok(i) => i,
        Err(why) => {
            eprintln!("beckon chat: {why}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    sdk.login(&args.login.app, &args.account, &token, 0, "");
    match await_login(&mut events).await {
        Ok(uid) => say(&format!(
            "logged in to {} as {} (uid {uid}); /help lists the commands",
            args.login.app, args.account
        )),
        Err(why) => {
            say(&why);
            sdk.destroy().await;
            return ExitCode::FAILURE;
        }
    }
    let mut chat = Chat {
        sdk,
        me: args.account,
        target: None,
        channels: Default::default(),
        ringing: None,
        call: None,
    };
    let code = chat.serve(&mut events).await;
    chat.sdk.destroy().await;
    code
}

/// A status line.
fn say(text: &str) {
    println!("* {text}");
}

impl Chat {
    async fn serve(&mut self, events: &mut EventStream) -> ExitCode {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        if !self.command(line.trim_end()) {
                            break;
                        }
                    }
                    // The end of input (or an unreadable terminal) ends the session.
                    Ok(None) | Err(_) => break,
                },
                event = events.next() => match event {
                    Some(event) => {
                        if let Some(code) = self.event(event) {
                            return code;
                        }
                    }
                    None => return ExitCode::FAILURE,
                },
            }
        }
        self.sdk.logout();
        let wait = async {
            while let Some(e) = events.next().await {
                if let Event::Logout { ecode } = e {
                    say(&format!("logged out ({})", code_name(ecode)));
                    return;
                }
            }
        };
        if tokio::time::timeout(LOGOUT_WAIT, wait).await.is_err() {
            say("logged out (not confirmed by the server)");
        }
        ExitCode::SUCCESS
    }

    /// Runs one input line; returns whether to go on.
    fn command(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return true;
        }
        let Some(rest) = line.strip_prefix('/') else {
            self.send(line);
            return true;
        };
        let (cmd, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let arg = arg.trim();
        let mut words = arg.split_whitespace();
        match (cmd, words.next()) {
            ("quit" | "exit", _) => return false,
            ("help", _) => println!("{HELP}"),
            ("to", Some(name)) => {
                self.target = Some(Target::Peer(name.to_owned()));
                say(&format!("talking to {name}"));
            }
            ("join", Some(channel)) => self.sdk.channel_join(channel),
            ("leave", channel) => match channel.map(str::to_owned).or_else(|| self.channel()) {
                Some(c) => self.sdk.channel_leave(&c),
                None => say("not in a channel"),
            },
            ("members", _) => match self.channel() {
                Some(c) => {
                    let members = self.channels.get(&c).cloned().unwrap_or_default();
                    let list: Vec<_> = members.into_iter().collect();
                    say(&format!("members of {c}: {}", list.join(", ")));
                }
                None => say("not in a channel"),
            },
            ("status", Some(name)) => self.sdk.query_user_status(name),
            ("attr", Some(name)) => {
                let value = arg[name.len()..].trim();
                self.sdk.set_attr(name, value);
                say(&format!("set {name}"));
            }
            ("attrs", account) => {
                let account = account.unwrap_or(&self.me).to_owned();
                self.sdk.get_user_attr_all(&account);
            }
            ("call", Some(peer)) => {
                let channel = words
                    .next()
                    .map_or_else(|| format!("call-{}-{peer}", self.me), str::to_owned);
                self.sdk.channel_invite_user(&channel, peer, 0);
                self.call = Some(Call {
                    channel: channel.clone(),
                    peer: peer.to_owned(),
                });
                say(&format!("calling {peer} on {channel}"));
            }
            ("accept" | "refuse", _) => match self.ringing.take() {
                Some(call) if cmd == "accept" => {
                    self.sdk
                        .channel_invite_accept(&call.channel, &call.peer, 0, "");
                    say(&format!("in a call with {} on {}", call.peer, call.channel));
                    self.call = Some(call);
                }
                Some(call) => {
                    self.sdk
                        .channel_invite_refuse(&call.channel, &call.peer, 0, "");
                    say(&format!("refused {}", call.peer));
                }
                None => say("no call to answer"),
            },
            ("end", _) => match self.call.take() {
                Some(call) => self.sdk.channel_invite_end(&call.channel, &call.peer, 0),
                None => say("not in a call"),
            },
            ("dtmf", Some(digits)) => match &self.call {
                Some(call) => self
                    .sdk
                    .channel_invite_dtmf(&call.channel, &call.peer, digits),
                None => say("not in a call"),
            },
            (other, _) => say(&format!(
                "unknown command or missing argument: /{other}; /help"
            )),
        }
        true
    }

    fn channel(&self) -> Option<String> {
        match &self.target {
            Some(Target::Channel(c)) => Some(c.clone()),
            _ => self.channels.keys().next().cloned(),
        }
    }

    fn send(&mut self, text: &str) {
        match &self.target {
            Some(Target::Peer(peer)) => {
                self.sdk.message_instant_send(peer, 0, text, "");
            }
            Some(Target::Channel(channel)) => {
                self.sdk.message_channel_send(channel, text, "");
            }
            None => say("no one to send to: /to NAME or /join CHANNEL first"),
        }
    }

    /// Prints one event; returns an exit code when the session is over.
    fn event(&mut self, event: Event) -> Option<ExitCode> {
        match event {
            Event::MessageInstantReceive { account, msg, .. } => println!("<{account}> {msg}"),
            Event::MessageChannelReceive {
                channel,
                account,
                msg,
                ..
            } => println!("[{channel}] <{account}> {msg}"),
            Event::MessageSendError { message_id, ecode } => {
                say(&format!(
                    "message {message_id} failed: {}",
                    code_name(ecode)
                ));
            }
            Event::ChannelJoined { channel } => {
                self.channels.entry(channel.clone()).or_default();
                self.target = Some(Target::Channel(channel));
            }
            Event::ChannelUserList {
                channel, accounts, ..
            } => {
                say(&format!("joined {channel}: {}", accounts.join(", ")));
                self.channels
                    .insert(channel, accounts.into_iter().collect());
            }
            Event::ChannelJoinFailed { channel, ecode } => {
                say(&format!("cannot join {channel}: {}", code_name(ecode)));
            }
            Event::ChannelLeaved { channel, ecode } => {
                self.channels.remove(&channel);
                if self.target == Some(Target::Channel(channel.clone())) {
                    self.target = None;
                }
                say(&format!("left {channel} ({})", code_name(ecode)));
            }
            Event::ChannelUserJoined {
                channel, account, ..
            } => {
                say(&format!("{account} joined {channel}"));
                self.channels.entry(channel).or_default().insert(account);
            }
            Event::ChannelUserLeaved {
                channel, account, ..
            } => {
                say(&format!("{account} left {channel}"));
                if let Some(members) = self.channels.get_mut(&channel) {
                    members.remove(&account);
                }
            }
            Event::ChannelAttrUpdated {
                channel,
                name,
                value,
                kind,
            } => say(&format!("{channel}: attribute {name} {kind} {value:?}")),
            Event::QueryUserStatusResult { name, status } => {
                let state = if status == "1" { "online" } else { "offline" };
                say(&format!("{name} is {state}"));
            }
            Event::UserAttrAllResult { account, value } => {
                say(&format!("attributes of {account}: {value}"));
            }
            Event::UserAttrResult {
                account,
                name,
                value,
            } => say(&format!("{account}.{name} = {value:?}")),
            Event::InviteReceived {
                channel, account, ..
            } => {
                say(&format!(
                    "call from {account} on {channel}: /accept or /refuse"
                ));
                self.ringing = Some(Call {
                    channel,
                    peer: account,
                });
            }
            Event::InviteReceivedByPeer { account, .. } => say(&format!("{account} is ringing")),
            Event::InviteAcceptedByPeer {
                channel, account, ..
            } => say(&format!("{account} accepted the call on {channel}")),
            Event::InviteRefusedByPeer {
                channel, account, ..
            } => {
                self.forget_call(&channel);
                say(&format!("{account} refused the call on {channel}"));
            }
            Event::InviteFailed {
                channel,
                account,
                ecode,
                ..
            } => {
                self.forget_call(&channel);
                say(&format!(
                    "the call with {account} on {channel} failed: {}",
                    code_name(ecode)
                ));
            }
            Event::InviteEndByPeer {
                channel, account, ..
            } => {
                self.forget_call(&channel);
                if self.ringing.as_ref().is_some_and(|c| c.channel == channel) {
                    self.ringing = None;
                }
                say(&format!("{account} ended the call on {channel}"));
            }
            Event::InviteEndByMyself {
                channel, account, ..
            } => say(&format!("you ended the call with {account} on {channel}")),
            Event::InviteMsg {
                account,
                msg_type,
                msg_data,
                ..
            } => say(&format!("{msg_type} from {account}: {msg_data}")),
            Event::Reconnecting { nretry } => {
                say(&format!(
                    "connection lost; reconnecting (attempt {nretry})…"
                ));
            }
            Event::Reconnected { .. } => say("reconnected"),
            Event::Logout { ecode } => {
                say(&format!("logged out ({})", code_name(ecode)));
                return Some(if ecode == 101 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            Event::Error { name, ecode, desc } => {
                say(&format!("{name} failed: {} {desc}", code_name(ecode)));
            }
            _ => {}
        }
        None
    }

    fn forget_call(&mut self, channel: &str) {
        if self.call.as_ref().is_some_and(|c| c.channel == channel) {
            self.call = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_names_every_command() {
        for cmd in [
            "/to", "/join", "/leave", "/members", "/status", "/attr", "/attrs", "/call", "/accept",
            "/refuse", "/end", "/dtmf", "/quit",
        ] {
            assert!(HELP.contains(cmd), "{cmd}");
        }
    }
}
