//! The C callbacks (`beckon_sig_callbacks`) and the delivery of one [`Event`] to them.
//!
//! Every string is handed over as `(pointer, size)` with a NUL at `pointer[size]`: the event's
//! `String` gets a `'\0'` pushed (reallocating only when it has no spare capacity) and lives
//! until the call returns. The member list of `on_channel_user_list` is an array of such
//! strings followed by a NULL pointer.

use std::ffi::{c_char, c_int, c_void};

use beckon_sdk::Event;

type Str = *const c_char;
type User = *mut c_void;

/// `beckon_sig_callbacks`: the same members in the same order as the header's struct (a test
/// of the C/C++ suite compares the sizes; `beckon_sig_callbacks_size` reports this one's).
/// `None` is a NULL member.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(clippy::type_complexity)]
pub struct Callbacks {
    pub on_login_success: Option<unsafe extern "C" fn(User, u32, c_int)>,
    pub on_login_failed: Option<unsafe extern "C" fn(User, c_int)>,
    pub on_logout: Option<unsafe extern "C" fn(User, c_int)>,
    pub on_reconnecting: Option<unsafe extern "C" fn(User, u32)>,
    pub on_reconnected: Option<unsafe extern "C" fn(User, c_int)>,
    pub on_error: Option<unsafe extern "C" fn(User, Str, usize, c_int, Str, usize)>,
    pub on_log: Option<unsafe extern "C" fn(User, Str, usize)>,
    pub on_query_user_status_result: Option<unsafe extern "C" fn(User, Str, usize, Str, usize)>,
    pub on_user_attr_result: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, Str, usize)>,
    pub on_user_attr_all_result: Option<unsafe extern "C" fn(User, Str, usize, Str, usize)>,
    pub on_invoke_ret: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, Str, usize)>,
    pub on_message_send_success: Option<unsafe extern "C" fn(User, Str, usize)>,
    pub on_message_send_error: Option<unsafe extern "C" fn(User, Str, usize, c_int)>,
    pub on_message_instant_receive: Option<unsafe extern "C" fn(User, Str, usize, u32, Str, usize)>,
    pub on_message_channel_receive:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize)>,
    pub on_channel_joined: Option<unsafe extern "C" fn(User, Str, usize)>,
    pub on_channel_join_failed: Option<unsafe extern "C" fn(User, Str, usize, c_int)>,
    pub on_channel_leaved: Option<unsafe extern "C" fn(User, Str, usize, c_int)>,
    pub on_channel_user_joined: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32)>,
    pub on_channel_user_leaved: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32)>,
    pub on_channel_user_list:
        Option<unsafe extern "C" fn(User, Str, usize, c_int, *mut *mut c_char, *mut u32)>,
    pub on_channel_query_user_num_result:
        Option<unsafe extern "C" fn(User, Str, usize, c_int, c_int)>,
    pub on_channel_query_user_is_in:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, c_int)>,
    pub on_channel_attr_updated:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, Str, usize, Str, usize)>,
    pub on_invite_received:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize)>,
    pub on_invite_received_by_peer: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32)>,
    pub on_invite_accepted_by_peer:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize)>,
    pub on_invite_refused_by_peer:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize)>,
    pub on_invite_failed:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, c_int, Str, usize)>,
    pub on_invite_end_by_peer:
        Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize)>,
    pub on_invite_end_by_myself: Option<unsafe extern "C" fn(User, Str, usize, Str, usize, u32)>,
    pub on_invite_msg: Option<
        unsafe extern "C" fn(User, Str, usize, Str, usize, u32, Str, usize, Str, usize, Str, usize),
    >,
}

/// A string of an event, NUL-terminated for C; `ptr()`/`len()` are the pair C receives.
struct CStr0(String);

impl CStr0 {
    fn new(mut s: String) -> Self {
        s.push('\0');
        Self(s)
    }
    fn ptr(&self) -> Str {
        self.0.as_ptr().cast()
    }
    /// The length without the NUL.
    fn len(&self) -> usize {
        self.0.len() - 1
    }
}

/// Calls the member of `cb` that corresponds to `ev`, if set. Events the C API has no callback
/// for (later SDK versions') are dropped.
///
/// # Safety
///
/// Every member of `cb` that is set is a function with the signature the header declares for
/// it, callable on this thread with `user`, that returns normally.
pub(crate) unsafe fn deliver(cb: &Callbacks, user: User, ev: Event) {
    macro_rules! s {
        ($e:expr) => {
            CStr0::new($e)
        };
    }
    // SAFETY: (for every call below) the member is set, so by this function's contract it is a
    // function of exactly this signature; each string argument is a live NUL-terminated buffer
    // that outlives the call.
    unsafe {
        match ev {
            Event::LoginSuccess { uid, fd } => {
                if let Some(f) = cb.on_login_success {
                    f(user, uid, fd);
                }
            }
            Event::LoginFailed { ecode } => {
                if let Some(f) = cb.on_login_failed {
                    f(user, ecode);
                }
            }
            Event::Logout { ecode } => {
                if let Some(f) = cb.on_logout {
                    f(user, ecode);
                }
            }
            Event::Reconnecting { nretry } => {
                if let Some(f) = cb.on_reconnecting {
                    f(user, nretry);
                }
            }
            Event::Reconnected { fd } => {
                if let Some(f) = cb.on_reconnected {
                    f(user, fd);
                }
            }
            Event::Error { name, ecode, desc } => {
                if let Some(f) = cb.on_error {
                    let (n, d) = (s!(name), s!(desc));
                    f(user, n.ptr(), n.len(), ecode, d.ptr(), d.len());
                }
            }
            Event::Log { txt } => {
                if let Some(f) = cb.on_log {
                    let t = s!(txt);
                    f(user, t.ptr(), t.len());
                }
            }
            Event::QueryUserStatusResult { name, status } => {
                if let Some(f) = cb.on_query_user_status_result {
                    let (n, st) = (s!(name), s!(status));
                    f(user, n.ptr(), n.len(), st.ptr(), st.len());
                }
            }
            Event::UserAttrResult {
                account,
                name,
                value,
            } => {
                if let Some(f) = cb.on_user_attr_result {
                    let (a, n, v) = (s!(account), s!(name), s!(value));
                    f(user, a.ptr(), a.len(), n.ptr(), n.len(), v.ptr(), v.len());
                }
            }
            Event::UserAttrAllResult { account, value } => {
                if let Some(f) = cb.on_user_attr_all_result {
                    let (a, v) = (s!(account), s!(value));
                    f(user, a.ptr(), a.len(), v.ptr(), v.len());
                }
            }
            Event::InvokeRet { call_id, err, resp } => {
                if let Some(f) = cb.on_invoke_ret {
                    let (c, e, r) = (s!(call_id), s!(err), s!(resp));
                    f(user, c.ptr(), c.len(), e.ptr(), e.len(), r.ptr(), r.len());
                }
            }
            Event::MessageSendSuccess { message_id } => {
                if let Some(f) = cb.on_message_send_success {
                    let m = s!(message_id);
                    f(user, m.ptr(), m.len());
                }
            }
            Event::MessageSendError { message_id, ecode } => {
                if let Some(f) = cb.on_message_send_error {
                    let m = s!(message_id);
                    f(user, m.ptr(), m.len(), ecode);
                }
            }
            Event::MessageInstantReceive { account, uid, msg } => {
                if let Some(f) = cb.on_message_instant_receive {
                    let (a, m) = (s!(account), s!(msg));
                    f(user, a.ptr(), a.len(), uid, m.ptr(), m.len());
                }
            }
            Event::MessageChannelReceive {
                channel,
                account,
                uid,
                msg,
            } => {
                if let Some(f) = cb.on_message_channel_receive {
                    let (c, a, m) = (s!(channel), s!(account), s!(msg));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        m.ptr(),
                        m.len(),
                    );
                }
            }
            Event::ChannelJoined { channel } => {
                if let Some(f) = cb.on_channel_joined {
                    let c = s!(channel);
                    f(user, c.ptr(), c.len());
                }
            }
            Event::ChannelJoinFailed { channel, ecode } => {
                if let Some(f) = cb.on_channel_join_failed {
                    let c = s!(channel);
                    f(user, c.ptr(), c.len(), ecode);
                }
            }
            Event::ChannelLeaved { channel, ecode } => {
                if let Some(f) = cb.on_channel_leaved {
                    let c = s!(channel);
                    f(user, c.ptr(), c.len(), ecode);
                }
            }
            Event::ChannelUserJoined {
                channel,
                account,
                uid,
            } => {
                if let Some(f) = cb.on_channel_user_joined {
                    let (c, a) = (s!(channel), s!(account));
                    f(user, c.ptr(), c.len(), a.ptr(), a.len(), uid);
                }
            }
            Event::ChannelUserLeaved {
                channel,
                account,
                uid,
            } => {
                if let Some(f) = cb.on_channel_user_leaved {
                    let (c, a) = (s!(channel), s!(account));
                    f(user, c.ptr(), c.len(), a.ptr(), a.len(), uid);
                }
            }
            Event::ChannelUserList {
                channel,
                accounts,
                uids,
            } => {
                if let Some(f) = cb.on_channel_user_list {
                    let c = s!(channel);
                    let mut names: Vec<CStr0> = accounts.into_iter().map(CStr0::new).collect();
                    let mut ptrs: Vec<*mut c_char> = names
                        .iter_mut()
                        .map(|n| n.0.as_mut_ptr().cast())
                        .chain(std::iter::once(std::ptr::null_mut()))
                        .collect();
                    // One uid per account, whatever the event carries.
                    let mut uids: Vec<u32> = (0..names.len())
                        .map(|i| uids.get(i).copied().unwrap_or(0))
                        .collect();
                    let n = c_int::try_from(names.len()).unwrap_or(c_int::MAX);
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        n,
                        ptrs.as_mut_ptr(),
                        uids.as_mut_ptr(),
                    );
                }
            }
            Event::ChannelQueryUserNumResult {
                channel,
                ecode,
                num,
            } => {
                if let Some(f) = cb.on_channel_query_user_num_result {
                    let c = s!(channel);
                    f(user, c.ptr(), c.len(), ecode, num);
                }
            }
            Event::ChannelQueryUserIsIn {
                channel,
                account,
                is_in,
            } => {
                if let Some(f) = cb.on_channel_query_user_is_in {
                    let (c, a) = (s!(channel), s!(account));
                    f(user, c.ptr(), c.len(), a.ptr(), a.len(), is_in);
                }
            }
            Event::ChannelAttrUpdated {
                channel,
                name,
                value,
                kind,
            } => {
                if let Some(f) = cb.on_channel_attr_updated {
                    let (c, n, v, k) = (s!(channel), s!(name), s!(value), s!(kind));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        n.ptr(),
                        n.len(),
                        v.ptr(),
                        v.len(),
                        k.ptr(),
                        k.len(),
                    );
                }
            }
            Event::InviteReceived {
                channel,
                account,
                uid,
                extra,
            } => {
                if let Some(f) = cb.on_invite_received {
                    let (c, a, x) = (s!(channel), s!(account), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            Event::InviteReceivedByPeer {
                channel,
                account,
                uid,
            } => {
                if let Some(f) = cb.on_invite_received_by_peer {
                    let (c, a) = (s!(channel), s!(account));
                    f(user, c.ptr(), c.len(), a.ptr(), a.len(), uid);
                }
            }
            Event::InviteAcceptedByPeer {
                channel,
                account,
                uid,
                extra,
            } => {
                if let Some(f) = cb.on_invite_accepted_by_peer {
                    let (c, a, x) = (s!(channel), s!(account), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            Event::InviteRefusedByPeer {
                channel,
                account,
                uid,
                extra,
            } => {
                if let Some(f) = cb.on_invite_refused_by_peer {
                    let (c, a, x) = (s!(channel), s!(account), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            Event::InviteFailed {
                channel,
                account,
                uid,
                ecode,
                extra,
            } => {
                if let Some(f) = cb.on_invite_failed {
                    let (c, a, x) = (s!(channel), s!(account), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        ecode,
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            Event::InviteEndByPeer {
                channel,
                account,
                uid,
                extra,
            } => {
                if let Some(f) = cb.on_invite_end_by_peer {
                    let (c, a, x) = (s!(channel), s!(account), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            Event::InviteEndByMyself {
                channel,
                account,
                uid,
            } => {
                if let Some(f) = cb.on_invite_end_by_myself {
                    let (c, a) = (s!(channel), s!(account));
                    f(user, c.ptr(), c.len(), a.ptr(), a.len(), uid);
                }
            }
            Event::InviteMsg {
                channel,
                account,
                uid,
                msg_type,
                msg_data,
                extra,
            } => {
                if let Some(f) = cb.on_invite_msg {
                    let (c, a) = (s!(channel), s!(account));
                    let (t, d, x) = (s!(msg_type), s!(msg_data), s!(extra));
                    f(
                        user,
                        c.ptr(),
                        c.len(),
                        a.ptr(),
                        a.len(),
                        uid,
                        t.ptr(),
                        t.len(),
                        d.ptr(),
                        d.len(),
                        x.ptr(),
                        x.len(),
                    );
                }
            }
            // `Event` is non-exhaustive: later SDK versions' events wait for a C callback.
            _ => {}
        }
    }
}

/// Copies the application's struct of `size` bytes into a [`Callbacks`]: members beyond
/// `size` (an older program's shorter struct) stay NULL, bytes beyond ours are ignored.
///
/// # Safety
///
/// `src` is NULL or valid for reads of `size` bytes laid out as the header's struct.
pub(crate) unsafe fn copy_from_c(src: *const Callbacks, size: usize) -> Option<Callbacks> {
    if src.is_null() {
        return None;
    }
    let mut table = Callbacks::default();
    let n = size.min(std::mem::size_of::<Callbacks>());
    // Whole members only: a size that cuts a pointer in two leaves that member NULL.
    let n = n - n % std::mem::size_of::<usize>();
    // SAFETY: `src` is valid for `size` ≥ `n` bytes (the caller's contract), `table` for
    // size_of::<Callbacks>() ≥ `n`; they do not overlap. Every member is an `Option` of a
    // function pointer, for which any pointer-sized value the C side can hold (NULL or a
    // function address) is valid.
    unsafe {
        std::ptr::copy_nonoverlapping(src.cast::<u8>(), (&raw mut table).cast::<u8>(), n);
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::sync::Mutex;

    use super::*;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// # Safety
    ///
    /// `p` is NUL-terminated at `p[n]`.
    unsafe fn text(p: Str, n: usize) -> String {
        // SAFETY: the caller's contract; the NUL at p[n] is also checked.
        let s = unsafe { CStr::from_ptr(p) };
        assert_eq!(s.to_bytes().len(), n, "NUL right after the string");
        s.to_str().unwrap().to_owned()
    }

    unsafe extern "C" fn on_error(_: User, n: Str, nl: usize, code: c_int, d: Str, dl: usize) {
        // SAFETY: `deliver` passes NUL-terminated strings.
        let (n, d) = unsafe { (text(n, nl), text(d, dl)) };
        SEEN.lock().unwrap().push(format!("error {n} {code} {d}"));
    }

    unsafe extern "C" fn on_list(
        _: User,
        c: Str,
        cl: usize,
        n: c_int,
        accounts: *mut *mut c_char,
        uids: *mut u32,
    ) {
        // SAFETY: `deliver` passes `n` NUL-terminated accounts, a NULL after them, `n` uids.
        unsafe {
            let mut line = format!("list {} {n}", text(c, cl));
            for i in 0..usize::try_from(n).unwrap() {
                let a = CStr::from_ptr(*accounts.add(i)).to_str().unwrap();
                line.push_str(&format!(" {a}:{}", *uids.add(i)));
            }
            assert!((*accounts.add(usize::try_from(n).unwrap())).is_null());
            SEEN.lock().unwrap().push(line);
        }
    }

    #[test]
    fn strings_arrive_nul_terminated_and_lists_end_with_null() {
        let cb = Callbacks {
            on_error: Some(on_error),
            on_channel_user_list: Some(on_list),
            ..Callbacks::default()
        };
        // SAFETY: the members set above have the signatures `deliver` calls them with.
        unsafe {
            deliver(
                &cb,
                std::ptr::null_mut(),
                Event::Error {
                    name: "login".into(),
                    ecode: 1004,
                    desc: String::with_capacity(0),
                },
            );
            deliver(
                &cb,
                std::ptr::null_mut(),
                Event::ChannelUserList {
                    channel: "lobby".into(),
                    accounts: vec!["alice".into(), "bob".into()],
                    uids: vec![0],
                },
            );
            // No member for it: nothing happens.
            deliver(&cb, std::ptr::null_mut(), Event::Logout { ecode: 101 });
        }
        assert_eq!(
            *SEEN.lock().unwrap(),
            ["error login 1004 ", "list lobby 2 alice:0 bob:0"]
        );
    }

    #[test]
    fn a_shorter_struct_leaves_the_later_members_null() {
        let full = Callbacks {
            on_login_success: None,
            on_error: Some(on_error),
            on_channel_user_list: Some(on_list),
            ..Callbacks::default()
        };
        let word = std::mem::size_of::<usize>();
        // SAFETY: `full` is valid for its whole size.
        let short = unsafe { copy_from_c(&full, 6 * word + 3) }.unwrap();
        assert!(short.on_error.is_some(), "member 6 is within the size");
        assert!(
            short.on_channel_user_list.is_none(),
            "member 21 is beyond it"
        );
        // SAFETY: as above.
        let all = unsafe { copy_from_c(&full, 4096) }.unwrap();
        assert!(all.on_channel_user_list.is_some());
        // SAFETY: NULL is never read.
        assert!(unsafe { copy_from_c(std::ptr::null(), 8) }.is_none());
    }
}
