//! A value that never prints: App Certificates, server secrets, tokens, private keys.

use std::fmt;
use std::str::FromStr;

/// What [`Secret`]'s `Debug` and `Display` print instead of the value.
pub const REDACTED: &str = "[redacted]";

/// A secret value whose `Debug` and `Display` print [`REDACTED`], never the value.
///
/// Configurations and command lines end up in logs (`{config:?}` in a start-up line, a panic
/// message, a `tracing` field); a secret held as a `Secret` stays out of them however the value
/// around it is printed, with no hand-written `Debug` that has to remember to skip it. Reading
/// the value takes an explicit [`expose`](Self::expose), which is easy to find in a review.
///
/// It is not a vault: the value lives in ordinary memory, is copied by `Clone`, and is not
/// wiped when dropped. It offers no `PartialEq`, so comparing two secrets is a deliberate
/// `expose()` on both sides (where a comparison can leak timing, use a constant-time one).
///
/// ```
/// use beckon_token::Secret;
///
/// let certificate = Secret::new("5cfd2fd1755d40ecb72977518be15d3b".to_owned());
/// assert_eq!(format!("{certificate:?}"), "[redacted]");
/// assert_eq!(certificate.to_string(), "[redacted]");
///
/// #[derive(Debug)]
/// struct App { app_id: String, certificate: Secret<String> }
/// let app = App { app_id: "myapp".into(), certificate };
/// assert_eq!(format!("{app:?}"), r#"App { app_id: "myapp", certificate: [redacted] }"#);
/// assert_eq!(app.certificate.expose(), "5cfd2fd1755d40ecb72977518be15d3b");
/// ```
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself, for the one place that needs it (signing, verifying, handing
    /// it to a library); never for printing.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// The secret value, unwrapped, for an API that takes it by value.
    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// Parses the value and wraps it, e.g. a certificate given on a command line.
impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_redacted() {
        let s = Secret::new(String::from("hunter2"));
        for text in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{s}"),
            format!("{s:>20}"),
            format!("{:?}", Some(&s)),
            format!("{:?}", vec![s.clone()]),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
        let bytes = Secret::new([0xabu8; 32]);
        assert_eq!(format!("{bytes:?}"), REDACTED);
    }

    #[test]
    fn the_value_is_there_when_exposed() {
        let s: Secret<String> = "hunter2".parse().unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(Secret::from(7u8).into_exposed(), 7);
        assert!("x".parse::<Secret<u32>>().is_err());
    }
}
