//! String arguments: `(pointer, size)` pairs from C, checked before they reach the SDK.
//!
//! The SDK takes `&str`; C hands over bytes. A pair is accepted when it is NULL with size 0
//! (the empty string: the seeds pass `deviceID` as NULL) or points at `size` bytes of UTF-8.
//! Anything else — NULL with a size, a size beyond what any allocation can have, bytes that are
//! not UTF-8 — is refused with `GENERAL_E_WRONG_PARAM` (1004) exactly as the SDK refuses bad
//! input: through the call's failure callback where it has one, then `onError(name, 1004,
//! desc)` with a `desc` naming the parameter. Nothing reaches the server and nothing changes.

use std::ffi::c_char;
use std::fmt;

use beckon_sdk::Event;

/// `GENERAL_E_WRONG_PARAM`.
pub(crate) const WRONG_PARAM: i32 = 1004;

/// One `(pointer, size)` argument and the seed's name for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw {
    pub(crate) name: &'static str,
    pub(crate) ptr: *const c_char,
    pub(crate) len: usize,
}

/// Why an argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadArg {
    /// NULL with a non-zero size.
    Null,
    /// A size no object can have (over `isize::MAX` bytes).
    TooLong,
    /// Not UTF-8: the first bad byte is at this offset.
    NotUtf8(usize),
}

impl fmt::Display for BadArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("is NULL with a non-zero size"),
            Self::TooLong => f.write_str("has an impossible size"),
            Self::NotUtf8(at) => write!(f, "is not UTF-8 (invalid byte at offset {at})"),
        }
    }
}

impl Raw {
    /// The argument as text.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL, or valid for reads of `len` bytes that stay unchanged for `'a`.
    pub(crate) unsafe fn text<'a>(self) -> Result<&'a str, BadArg> {
        // SAFETY: forwarded from the caller.
        let bytes = unsafe { self.bytes() }?;
        std::str::from_utf8(bytes).map_err(|e| BadArg::NotUtf8(e.valid_up_to()))
    }

    /// The argument as well as it can be read, for naming it in a failure callback: invalid
    /// UTF-8 replaced by U+FFFD, "" when it cannot be read at all.
    ///
    /// # Safety
    ///
    /// As [`text`](Self::text).
    pub(crate) unsafe fn lossy(self) -> String {
        // SAFETY: forwarded from the caller.
        match unsafe { self.bytes() } {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// # Safety
    ///
    /// As [`text`](Self::text).
    unsafe fn bytes<'a>(self) -> Result<&'a [u8], BadArg> {
        if self.len == 0 {
            return Ok(&[]);
        }
        if self.ptr.is_null() {
            return Err(BadArg::Null);
        }
        if self.len > isize::MAX as usize {
            return Err(BadArg::TooLong);
        }
        // SAFETY: non-NULL, and the caller guarantees `len` readable bytes that stay unchanged
        // for 'a; `len` is within isize::MAX as `from_raw_parts` requires.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) })
    }
}

/// Decodes every argument, or reports the first bad one and its reason.
///
/// # Safety
///
/// Every `Raw` satisfies [`Raw::text`]'s contract for `'a`.
pub(crate) unsafe fn texts<'a, const N: usize>(
    raws: [Raw; N],
) -> Result<[&'a str; N], (&'static str, BadArg)> {
    let mut out = [""; N];
    for (slot, raw) in out.iter_mut().zip(raws) {
        // SAFETY: forwarded from the caller.
        *slot = unsafe { raw.text() }.map_err(|e| (raw.name, e))?;
    }
    Ok(out)
}

/// Every argument read leniently (see [`Raw::lossy`]).
///
/// # Safety
///
/// As [`texts`].
pub(crate) unsafe fn lossy<const N: usize>(raws: [Raw; N]) -> [String; N] {
    // SAFETY: forwarded from the caller.
    raws.map(|r| unsafe { r.lossy() })
}

/// The events that report a call refused for a bad argument: the call's failure callback, if
/// it has one, then `onError`. `failure` is given the arguments read leniently.
pub(crate) fn refusal(
    call: &'static str,
    bad: (&'static str, BadArg),
    failure: Option<Event>,
) -> Vec<Event> {
    let (param, why) = bad;
    failure
        .into_iter()
        .chain(std::iter::once(Event::Error {
            name: call.to_owned(),
            ecode: WRONG_PARAM,
            desc: format!("{param} {why}"),
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8]) -> Raw {
        Raw {
            name: "p",
            ptr: bytes.as_ptr().cast(),
            len: bytes.len(),
        }
    }

    #[test]
    fn null_with_size_zero_is_empty_and_with_a_size_is_refused() {
        let mut r = Raw {
            name: "deviceID",
            ptr: std::ptr::null(),
            len: 0,
        };
        // SAFETY: NULL pointers are never read.
        assert_eq!(unsafe { r.text() }, Ok(""));
        r.len = 3;
        // SAFETY: as above.
        assert_eq!(unsafe { r.text() }, Err(BadArg::Null));
        // SAFETY: as above.
        assert_eq!(unsafe { r.lossy() }, "");
    }

    #[test]
    fn sizes_count_bytes_and_stop_before_any_nul() {
        let s = b"hello\0world";
        // SAFETY: `s` outlives the reads.
        assert_eq!(unsafe { raw(&s[..5]).text() }, Ok("hello"));
        // SAFETY: as above.
        assert_eq!(unsafe { raw(s).text() }, Ok("hello\0world"));
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_offset_and_read_leniently() {
        let s = b"ab\xffcd";
        // SAFETY: `s` outlives the reads.
        assert_eq!(unsafe { raw(s).text() }, Err(BadArg::NotUtf8(2)));
        // SAFETY: as above.
        assert_eq!(unsafe { raw(s).lossy() }, "ab\u{fffd}cd");
    }

    #[test]
    fn impossible_sizes_are_refused_without_reading() {
        let r = Raw {
            name: "msg",
            ptr: b"x".as_ptr().cast(),
            len: usize::MAX,
        };
        // SAFETY: the size check comes before any read.
        assert_eq!(unsafe { r.text() }, Err(BadArg::TooLong));
    }

    #[test]
    fn the_first_bad_argument_is_named() {
        let good = b"ok";
        let bad = b"\xc3";
        // SAFETY: both outlive the reads.
        let r = unsafe {
            texts([
                raw(good),
                Raw {
                    name: "msg",
                    ..raw(bad)
                },
            ])
        };
        assert_eq!(r, Err(("msg", BadArg::NotUtf8(0))));
        let evs = refusal(
            "messageInstantSend",
            r.unwrap_err(),
            Some(Event::MessageSendError {
                message_id: "m1".into(),
                ecode: WRONG_PARAM,
            }),
        );
        assert_eq!(
            evs,
            [
                Event::MessageSendError {
                    message_id: "m1".into(),
                    ecode: 1004
                },
                Event::Error {
                    name: "messageInstantSend".into(),
                    ecode: 1004,
                    desc: "msg is not UTF-8 (invalid byte at offset 0)".into()
                }
            ]
        );
    }
}
