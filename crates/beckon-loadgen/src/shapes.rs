//! The load shapes, written once for every [`Driver`]: which connections a shape opens, in
//! which roles, sharing which flows, and the loops they run.
//!
//! - **p2p**: `pairs` flows, each a receiver and a sender of its own, up to [`P2P_WINDOW`]
//!   messages outstanding per sender.
//! - **fan-out**: `members` receivers sharing one flow, then one publisher whose every message
//!   counts as delivered once all members have it, up to [`FANOUT_WINDOW`] outstanding.
//! - **idle**: `sessions` receivers of roles no one sends to.
//! - **login**: `conns` workers logging in and out in a loop.
//!
//! Each connection sets up within the shared setup limit and then adds a permit to
//! [`Shared::ready`]; a task that ends, ends with the reason.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::driver::{Driver, Receiver, Role, Sender};
use crate::load::{Flow, Gate, Payload, Shared, Tally, Tasks};

/// Messages a p2p sender may have outstanding.
pub(crate) const P2P_WINDOW: u64 = 128;
/// Messages the fan-out publisher may have outstanding (each to every member).
pub(crate) const FANOUT_WINDOW: u64 = 16;

/// The p2p shape: `pairs` receivers and senders, each pair a flow of its own.
pub(crate) fn p2p<D: Driver>(driver: &D, shared: &Shared, pairs: usize, tasks: &mut Tasks) {
    for pair in 0..pairs {
        let flow = Arc::new(Flow::default());
        receiver(driver, shared, &flow, Role::P2pReceiver(pair), tasks);
        let role = Role::P2pSender { pair, pairs };
        sender(driver, shared, &flow, role, 1, P2P_WINDOW, tasks);
    }
}

/// The fan-out members, all on `flow`.
pub(crate) fn fanout_members<D: Driver>(
    driver: &D,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    tasks: &mut Tasks,
) {
    for i in 0..members {
        receiver(driver, shared, flow, Role::FanoutMember(i), tasks);
    }
}

/// The fan-out publisher: a message is done once each of the `members` has it.
pub(crate) fn fanout_publisher<D: Driver>(
    driver: &D,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    tasks: &mut Tasks,
) {
    let per_message = members as u64;
    let role = Role::FanoutPublisher;
    sender(
        driver,
        shared,
        flow,
        role,
        per_message,
        FANOUT_WINDOW,
        tasks,
    );
}

/// `sessions` idle sessions, held (and kept alive, where the system asks for it) until
/// aborted.
pub(crate) fn idle<D: Driver>(driver: &D, shared: &Shared, sessions: usize, tasks: &mut Tasks) {
    // Nothing is sent to them; a message that came anyway would be counted on this flow.
    let flow = Arc::new(Flow::default());
    for i in 0..sessions {
        receiver(driver, shared, &flow, Role::Idle(i), tasks);
    }
}

/// `conns` workers, each logging in and out again and again, counting each login once its
/// session ended.
pub(crate) fn login<D: Driver>(
    driver: &D,
    conns: usize,
    logins: &Arc<AtomicU64>,
    tasks: &mut Tasks,
) {
    for worker in 0..conns {
        let (driver, logins) = (driver.clone(), logins.clone());
        tasks.spawn(async move {
            loop {
                driver.login(worker).await?;
                logins.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Sets a connection up within the setup limit, then reports it ready.
async fn set_up<T>(
    shared: &Shared,
    connect: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let conn = {
        let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
        connect.await?
    };
    shared.ready.add_permits(1);
    Ok(conn)
}

/// A receiver in `role`, counting on `flow`.
fn receiver<D: Driver>(
    driver: &D,
    shared: &Shared,
    flow: &Arc<Flow>,
    role: Role,
    tasks: &mut Tasks,
) {
    let (driver, shared, flow) = (driver.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let mut conn = set_up(&shared, driver.receiver(role)).await?;
        let mut tally = Tally::new(shared.recorder.clone(), flow);
        loop {
            conn.receive(&mut tally).await?;
            tally.commit();
        }
    });
}

/// A sender in `role`, sending as its gate allows: at most `window` messages outstanding,
/// each done once `per_message` deliveries of `flow` (and whatever the system acknowledges)
/// came back.
fn sender<D: Driver>(
    driver: &D,
    shared: &Shared,
    flow: &Arc<Flow>,
    role: Role,
    per_message: u64,
    window: u64,
    tasks: &mut Tasks,
) {
    let (driver, shared, flow) = (driver.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let mut conn = set_up(&shared, driver.sender(role)).await?;
        let mut gate = Gate::new(shared.control.clone(), flow, per_message, window);
        let mut payload = Payload::new();
        loop {
            let n = gate.quota(conn.confirmed(gate.delivered()));
            if n == 0 {
                conn.wait(&mut gate).await?;
                continue;
            }
            conn.send(n, &mut payload).await?;
            gate.sent(n);
        }
    });
}

#[cfg(test)]
mod tests {
    //! The shapes over an in-process system: a hub that forwards each message to the
    //! subscribers of its topic, whose receivers deliver only once the test lets them. One
    //! thread and tokio's paused clock: the tasks progress by turns, every wait is virtual, and
    //! the outcome does not depend on the machine's speed.

    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::cli::{Shape, System};
    use crate::driver::Inbox;
    use crate::load::{Mode, Recorder};
    use crate::measure::Ctx;
    use crate::procs::ServerProc;

    type Queue = mpsc::UnboundedSender<Vec<u8>>;

    /// The in-process system.
    #[derive(Clone, Debug)]
    struct Hub(Arc<HubState>);

    #[derive(Debug)]
    struct HubState {
        topics: Mutex<HashMap<String, Vec<Queue>>>,
        /// Messages published per topic.
        published: Mutex<HashMap<String, u64>>,
        /// Roles that connected.
        roles: Mutex<Vec<Role>>,
        /// Login workers, once per login.
        logins: Mutex<Vec<usize>>,
        /// Whether receivers may take messages from their queues (not until the test says).
        released: watch::Sender<bool>,
    }

    impl Hub {
        fn new() -> Self {
            Hub(Arc::new(HubState {
                topics: Mutex::default(),
                published: Mutex::default(),
                roles: Mutex::default(),
                logins: Mutex::default(),
                released: watch::Sender::new(false),
            }))
        }

        fn published(&self) -> HashMap<String, u64> {
            self.0.published.lock().unwrap().clone()
        }

        fn roles(&self) -> Vec<Role> {
            self.0.roles.lock().unwrap().clone()
        }

        fn release(&self) {
            self.0.released.send_replace(true);
        }
    }

    struct HubReceiver {
        released: watch::Receiver<bool>,
        inbox: mpsc::UnboundedReceiver<Vec<u8>>,
    }

    struct HubSender {
        hub: Hub,
        topic: String,
    }

    impl Driver for Hub {
        const SYSTEM: System = System::Raw;
        type Receiver = HubReceiver;
        type Sender = HubSender;

        fn start(_: &Ctx<'_>, _: Shape) -> Result<(ServerProc, Self), String> {
            Err("the hub runs in process".into())
        }

        async fn receiver(&self, role: Role) -> Result<HubReceiver, String> {
            self.0.roles.lock().unwrap().push(role);
            let (tx, inbox) = mpsc::unbounded_channel();
            let mut topics = self.0.topics.lock().unwrap();
            topics.entry(role.topic()).or_default().push(tx);
            Ok(HubReceiver {
                released: self.0.released.subscribe(),
                inbox,
            })
        }

        async fn sender(&self, role: Role) -> Result<HubSender, String> {
            self.0.roles.lock().unwrap().push(role);
            Ok(HubSender {
                hub: self.clone(),
                topic: role.topic(),
            })
        }

        async fn login(&self, worker: usize) -> Result<(), String> {
            self.0.logins.lock().unwrap().push(worker);
            tokio::task::yield_now().await;
            Ok(())
        }
    }

    impl Inbox for HubReceiver {
        type Message = Vec<u8>;

        async fn next(&mut self) -> Result<Vec<u8>, String> {
            let released = self.released.wait_for(|r| *r).await;
            released.map_err(|_| "the hub is gone")?;
            self.inbox
                .recv()
                .await
                .ok_or_else(|| "the hub is gone".into())
        }

        fn payload(body: &Vec<u8>) -> &[u8] {
            body
        }
    }

    impl Sender for HubSender {
        async fn send(&mut self, n: u64, payload: &mut Payload) -> Result<(), String> {
            for _ in 0..n {
                let body = payload.stamp().to_vec();
                let topics = self.hub.0.topics.lock().unwrap();
                for inbox in topics.get(&self.topic).into_iter().flatten() {
                    inbox.send(body.clone()).map_err(|_| "a receiver is gone")?;
                }
            }
            *self
                .hub
                .0
                .published
                .lock()
                .unwrap()
                .entry(self.topic.clone())
                .or_default() += n;
            Ok(())
        }
    }

    /// A hub, and a load's control, what it shares and its tasks, as a measurement sets them
    /// up.
    fn load() -> (Hub, watch::Sender<Mode>, Shared, Arc<Recorder>, Tasks) {
        let (control, rx) = watch::channel(Mode::Hold);
        let recorder = Arc::new(Recorder::default());
        let shared = Shared::new(rx, recorder.clone());
        (Hub::new(), control, shared, recorder, Tasks::new())
    }

    /// Lets the tasks take turns until `n` connections in all are set up.
    async fn ready(tasks: &mut Tasks, shared: &Shared, n: usize) {
        until(tasks, "setup", || shared.ready.available_permits() == n).await;
    }

    /// Lets the tasks take turns until `done` holds.
    async fn until(tasks: &mut Tasks, what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..1_000_000 {
            if done() {
                return;
            }
            tokio::select! {
                Some(r) = tasks.join_next() => panic!("a task ended: {r:?}"),
                () = tokio::task::yield_now() => {}
            }
        }
        panic!("{what} did not happen");
    }

    /// Lets a virtual 100 ms pass: the paused clock moves only once every task waits, so this
    /// shows what the tasks do when left alone.
    async fn settle(tasks: &mut Tasks) {
        tokio::select! {
            Some(r) = tasks.join_next() => panic!("a task ended: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn p2p_pairs_send_to_their_own_receiver_within_the_window() {
        let (hub, control, shared, recorder, mut tasks) = load();
        p2p(&hub, &shared, 3, &mut tasks);
        ready(&mut tasks, &shared, 6).await;
        let mut roles = hub.roles();
        roles.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            roles,
            [
                Role::P2pReceiver(0),
                Role::P2pReceiver(1),
                Role::P2pReceiver(2),
                Role::P2pSender { pair: 0, pairs: 3 },
                Role::P2pSender { pair: 1, pairs: 3 },
                Role::P2pSender { pair: 2, pairs: 3 },
            ]
        );

        // Nothing is delivered yet: each sender stops at its window, on its own topic.
        control.send(Mode::Flood).unwrap();
        let full: HashMap<String, u64> = (0..3).map(|i| (format!("p2p.{i}"), P2P_WINDOW)).collect();
        until(&mut tasks, "full windows", || hub.published() == full).await;
        settle(&mut tasks).await;
        assert_eq!(hub.published(), full, "a sender went past its window");
        assert_eq!(recorder.deliveries(), 0);

        // Deliveries open the windows again; holding stops the senders, and every message
        // sent is received once.
        hub.release();
        until(&mut tasks, "deliveries", || {
            recorder.deliveries() > 3 * 4 * P2P_WINDOW
        })
        .await;
        control.send(Mode::Hold).unwrap();
        let total = || hub.published().values().sum::<u64>();
        until(&mut tasks, "quiet", || recorder.deliveries() == total()).await;
        settle(&mut tasks).await;
        assert_eq!(recorder.deliveries(), total());
        assert!(hub.published().values().all(|n| *n > P2P_WINDOW));
        tasks.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fanout_reaches_every_member_and_counts_a_message_once_all_have_it() {
        let (hub, control, shared, recorder, mut tasks) = load();
        let flow = Arc::new(Flow::default());
        fanout_members(&hub, &shared, &flow, 5, &mut tasks);
        ready(&mut tasks, &shared, 5).await;
        fanout_publisher(&hub, &shared, &flow, 5, &mut tasks);
        ready(&mut tasks, &shared, 6).await;
        let roles: HashSet<Role> = hub.roles().into_iter().collect();
        assert!(roles.contains(&Role::FanoutPublisher));
        assert!((0..5).all(|i| roles.contains(&Role::FanoutMember(i))));

        control.send(Mode::Flood).unwrap();
        let full = HashMap::from([("fanout".to_owned(), FANOUT_WINDOW)]);
        until(&mut tasks, "a full window", || hub.published() == full).await;
        settle(&mut tasks).await;
        assert_eq!(hub.published(), full, "the publisher went past its window");

        hub.release();
        until(&mut tasks, "deliveries", || {
            flow.delivered() >= 5 * 4 * FANOUT_WINDOW
        })
        .await;
        control.send(Mode::Hold).unwrap();
        let sent = || hub.published()["fanout"];
        until(&mut tasks, "quiet", || flow.delivered() == 5 * sent()).await;
        settle(&mut tasks).await;
        assert_eq!(recorder.deliveries(), 5 * sent());
        tasks.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn latencies_are_kept_only_while_recording() {
        let (hub, control, shared, recorder, mut tasks) = load();
        hub.release();
        p2p(&hub, &shared, 1, &mut tasks);
        ready(&mut tasks, &shared, 2).await;
        control.send(Mode::Flood).unwrap();
        until(&mut tasks, "deliveries", || recorder.deliveries() > 1000).await;
        assert!(recorder.stop_recording().is_empty());
        recorder.start_recording();
        let from = recorder.deliveries();
        until(&mut tasks, "more deliveries", || {
            recorder.deliveries() > from + 1000
        })
        .await;
        let samples = recorder.stop_recording();
        assert!(!samples.is_empty());
        // Only batches begun while recording keep their latencies.
        assert!(samples.len() as u64 <= recorder.deliveries() - from);
        control.send(Mode::Hold).unwrap();
        tasks.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_get_roles_of_their_own_and_nothing_to_receive() {
        let (hub, _control, shared, recorder, mut tasks) = load();
        idle(&hub, &shared, 50, &mut tasks);
        ready(&mut tasks, &shared, 50).await;
        let topics: HashSet<String> = hub.roles().iter().map(|r| r.topic()).collect();
        assert_eq!(topics.len(), 50, "each idle session has a topic of its own");
        assert!(hub.roles().iter().all(|r| matches!(r, Role::Idle(_))));
        settle(&mut tasks).await;
        assert_eq!(recorder.deliveries(), 0);
        tasks.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn login_workers_loop_and_count_each_login() {
        let hub = Hub::new();
        let logins = Arc::new(AtomicU64::new(0));
        let mut tasks = Tasks::new();
        login(&hub, 4, &logins, &mut tasks);
        let count = || logins.load(Ordering::Relaxed);
        until(&mut tasks, "logins", || count() >= 40).await;
        tasks.shutdown().await;
        let done = hub.0.logins.lock().unwrap().clone();
        // A login is counted once it ended: at most one per worker is still in progress.
        assert!(done.len() as u64 >= count() && done.len() as u64 <= count() + 4);
        for w in 0..4 {
            assert!(done.iter().filter(|x| **x == w).count() >= 2, "{done:?}");
        }
    }

    #[test]
    fn roles_share_topics_within_a_pair_and_nowhere_else() {
        let p2p = |i| (Role::P2pReceiver(i), Role::P2pSender { pair: i, pairs: 8 });
        for i in 0..8 {
            let (r, s) = p2p(i);
            assert_eq!(r.topic(), s.topic());
            assert_ne!(r.topic(), p2p(i + 1).0.topic());
            assert_ne!(r.topic(), Role::Idle(i).topic());
            assert_eq!(Role::FanoutMember(i).topic(), Role::FanoutPublisher.topic());
        }
    }
}
