//! Ignore masks: senders whose messages never notify.
//!
//! A mask without `!` or `@` names a nick (`spambot`, `*bot`); one with
//! either is matched against the whole `nick!user@host`
//! (`*!*@bad.example`). `*` stands for any run of characters and `?` for
//! one; matching ignores case (IRC rfc1459 folding).

use crate::proto::casemap::CaseMapping;

/// Longest mask accepted, in bytes.
pub const MAX_MASK_LEN: usize = 200;

/// Why a mask was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error("the mask is empty")]
    Empty,
    #[error("the mask is longer than {MAX_MASK_LEN} bytes")]
    TooLong,
    #[error("the mask must not contain spaces or control characters")]
    BadChar,
}

/// Check a mask typed by a user.
pub fn validate(mask: &str) -> Result<(), MaskError> {
    if mask.is_empty() {
        return Err(MaskError::Empty);
    }
    if mask.len() > MAX_MASK_LEN {
        return Err(MaskError::TooLong);
    }
    if mask.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MaskError::BadChar);
    }
    Ok(())
}

/// The sender of a message as far as it is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sender<'a> {
    pub nick: &'a str,
    pub user: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// Whether `mask` matches `sender`. Unknown user or host parts are empty,
/// so only `*` matches them.
pub fn matches(mask: &str, sender: &Sender<'_>) -> bool {
    let fold = |s: &str| CaseMapping::Rfc1459.fold(s);
    if mask.contains(['!', '@']) {
        let full = format!(
            "{}!{}@{}",
            sender.nick,
            sender.user.unwrap_or(""),
            sender.host.unwrap_or("")
        );
        glob(&fold(mask), &fold(&full))
    } else {
        glob(&fold(mask), &fold(sender.nick))
    }
}

/// `*`/`?` glob over characters, iterative with one backtrack point.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPAM: Sender<'static> = Sender {
        nick: "SpamBot",
        user: Some("~spam"),
        host: Some("bad.example"),
    };

    #[test]
    fn nick_masks_match_the_nick_only() {
        assert!(matches("spambot", &SPAM));
        assert!(matches("*bot", &SPAM));
        assert!(matches("sp?mb?t", &SPAM));
        assert!(!matches("spam", &SPAM));
        assert!(!matches("bad.example", &SPAM));
        // rfc1459 folding: [ and { are the same character.
        let s = Sender {
            nick: "a[b]",
            ..Default::default()
        };
        assert!(matches("A{B}", &s));
    }

    #[test]
    fn full_masks_match_the_hostmask() {
        assert!(matches("*!*@bad.example", &SPAM));
        assert!(matches("*!~spam@*", &SPAM));
        assert!(matches("spambot!*@*.EXAMPLE", &SPAM));
        assert!(!matches("*!*@good.example", &SPAM));
        // Unknown parts are empty.
        let s = Sender {
            nick: "x",
            ..Default::default()
        };
        assert!(matches("x!*@*", &s));
        assert!(!matches("*!*@host", &s));
    }

    #[test]
    fn validation() {
        assert_eq!(validate(""), Err(MaskError::Empty));
        assert_eq!(validate("a b"), Err(MaskError::BadChar));
        assert_eq!(validate("a\u{1}"), Err(MaskError::BadChar));
        assert_eq!(validate(&"a".repeat(201)), Err(MaskError::TooLong));
        assert_eq!(validate("*!*@host"), Ok(()));
    }

    proptest! {
        #[test]
        fn literal_masks_match_themselves(nick in "[a-zA-Z0-9_|^-]{1,12}") {
            let s = Sender { nick: &nick, ..Default::default() };
            prop_assert!(matches(&nick.to_ascii_uppercase(), &s));
            prop_assert!(matches("*", &s));
        }

        #[test]
        fn never_panics(mask in "\\PC{0,20}", nick in "\\PC{0,10}") {
            let s = Sender { nick: &nick, ..Default::default() };
            let _ = matches(&mask, &s);
        }
    }
}
