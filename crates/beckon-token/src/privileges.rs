//! The privileges a token grants.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// A set of privileges carried by a token, as bit flags.
///
/// Bits this version does not name are kept as they are (a token minted by a newer minter
/// round-trips unchanged), but grant nothing: only [`contains`](Self::contains) of a named
/// flag means anything to the server.
///
/// ```
/// use beckon_token::Privileges;
///
/// let p = Privileges::NONE | Privileges::SERVER;
/// assert!(p.contains(Privileges::SERVER));
/// assert!(!Privileges::NONE.contains(Privileges::SERVER));
/// assert_eq!(p.bits(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Privileges(u32);

impl Privileges {
    /// No privileges: an ordinary client login.
    pub const NONE: Self = Self(0);

    /// The `server` privilege (SPEC §10): special channels, `messageChannelSendForce`, gateway
    /// registration and admin queries.
    pub const SERVER: Self = Self(1 << 0);

    /// Every named flag, with the name `Debug` prints for it.
    const NAMED: [(Self, &'static str); 1] = [(Self::SERVER, "SERVER")];

    /// The set with exactly these bits, named or not.
    pub const fn from_bits_retain(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw bits, as carried in a token.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is in `self` (so `contains(NONE)` is always true).
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit at all is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Privileges {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Privileges {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Privileges {
    /// Prints the flag names, e.g. `Privileges(SERVER)`, `Privileges(NONE)`, and any bits
    /// without a name in hex: `Privileges(SERVER | 0x80)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Privileges(")?;
        if self.is_empty() {
            f.write_str("NONE")?;
        }
        let mut rest = self.0;
        let mut first = true;
        for (flag, name) in Self::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                rest &= !flag.0;
                first = false;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut p = Privileges::NONE;
        assert!(p.is_empty());
        assert!(p.contains(Privileges::NONE));
        assert!(!p.contains(Privileges::SERVER));
        p |= Privileges::SERVER;
        assert!(p.contains(Privileges::SERVER));
        assert!(!p.is_empty());
        assert_eq!(p, Privileges::from_bits_retain(1));
        assert_eq!(Privileges::default(), Privileges::NONE);
        let unknown = Privileges::from_bits_retain(0x80);
        assert!(!unknown.contains(Privileges::SERVER));
        assert_eq!((unknown | Privileges::SERVER).bits(), 0x81);
    }

    #[test]
    fn debug_names_flags() {
        assert_eq!(format!("{:?}", Privileges::NONE), "Privileges(NONE)");
        assert_eq!(format!("{:?}", Privileges::SERVER), "Privileges(SERVER)");
        assert_eq!(
            format!("{:?}", Privileges::from_bits_retain(0x81)),
            "Privileges(SERVER | 0x80)"
        );
        assert_eq!(
            format!("{:?}", Privileges::from_bits_retain(0x80)),
            "Privileges(0x80)"
        );
    }
}
