//! RPL_ISUPPORT (005): the token store a server advertises, typed accessors
//! for the tokens tether cares about, and the `\xHH` value escaping used to
//! regenerate 005 lines for clients.

use super::casemap::CaseMapping;

/// Maximum number of tokens per regenerated 005 line.
const TOKENS_PER_LINE: usize = 13;

/// The ISUPPORT tokens advertised by a server, in arrival order.
#[derive(Clone, Debug, Default)]
pub struct Isupport {
    tokens: Vec<(String, Option<String>)>,
}

impl Isupport {
    /// An empty token set (every accessor reports its default).
    pub fn new() -> Self {
        Isupport::default()
    }

    /// Apply the parameters of one RPL_ISUPPORT (005) line, *excluding* the first param (the client nick) and the last (the trailing "are supported by this server" text); i.e. the caller passes `&params[1..params.len()-1]`. Handles `TOKEN`, `TOKEN=`, `TOKEN=value` (decoding `\xHH` escapes in the value) and `-TOKEN` (removal).
    ///
    /// `TOKEN=` is stored the same as `TOKEN` (present without a value), as
    /// the two forms are equivalent. Empty parameters and parameters with an
    /// empty name are ignored.
    pub fn apply(&mut self, tokens: &[String]) {
        for raw in tokens {
            if let Some(negated) = raw.strip_prefix('-') {
                let name = negated.split_once('=').map_or(negated, |(n, _)| n);
                if !name.is_empty() {
                    self.tokens.retain(|(n, _)| n != name);
                }
                continue;
            }
            let (name, value) = match raw.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (raw.as_str(), None),
            };
            if name.is_empty() {
                continue;
            }
            let value = value.filter(|v| !v.is_empty()).map(unescape_value);
            match self.tokens.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value,
                None => self.tokens.push((name.to_owned(), value)),
            }
        }
    }

    /// Look a token up: `None` if absent, `Some(None)` if present without a
    /// value, `Some(Some(value))` otherwise. Token names are case-sensitive
    /// (uppercase as sent).
    pub fn get(&self, token: &str) -> Option<Option<&str>> {
        self.tokens
            .iter()
            .find(|(n, _)| n == token)
            .map(|(_, v)| v.as_deref())
    }

    /// Whether the token is present.
    pub fn contains(&self, token: &str) -> bool {
        self.get(token).is_some()
    }

    /// All tokens (decoded values), in arrival order.
    pub fn tokens(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.tokens.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// The advertised casemapping; Rfc1459 when absent or unknown.
    pub fn casemapping(&self) -> CaseMapping {
        self.get("CASEMAPPING")
            .flatten()
            .and_then(CaseMapping::from_token)
            .unwrap_or_default()
    }

    /// Channel type prefixes: `"#&"` when absent; an empty value means the
    /// server has no channels.
    pub fn chantypes(&self) -> String {
        match self.get("CHANTYPES") {
            None => "#&".to_owned(),
            Some(v) => v.unwrap_or("").to_owned(),
        }
    }

    /// Membership prefixes as (mode, symbol) pairs, highest rank first.
    /// `(ov)@+` when absent; an empty or malformed value means none.
    pub fn prefix(&self) -> Vec<(char, char)> {
        let value = match self.get("PREFIX") {
            None => "(ov)@+",
            Some(v) => v.unwrap_or(""),
        };
        let Some((modes, symbols)) = value
            .strip_prefix('(')
            .and_then(|rest| rest.split_once(')'))
        else {
            return Vec::new();
        };
        if modes.chars().count() != symbols.chars().count() {
            return Vec::new();
        }
        modes.chars().zip(symbols.chars()).collect()
    }

    /// The four CHANMODES groups (A: list, B: always a parameter, C: a
    /// parameter when set, D: never a parameter). `beI,k,l,imnpst` when
    /// absent; missing groups are empty and extra groups are ignored.
    pub fn chanmodes(&self) -> [String; 4] {
        let value = match self.get("CHANMODES") {
            None => "beI,k,l,imnpst",
            Some(v) => v.unwrap_or(""),
        };
        let mut groups: [String; 4] = Default::default();
        for (slot, group) in groups.iter_mut().zip(value.split(',')) {
            *slot = group.to_owned();
        }
        groups
    }

    /// The NETWORK name, if advertised with a value.
    pub fn network(&self) -> Option<&str> {
        self.get("NETWORK").flatten()
    }

    /// Whether `target` names a channel (its first character is one of
    /// [`chantypes`](Self::chantypes)).
    pub fn is_channel(&self, target: &str) -> bool {
        match target.chars().next() {
            Some(first) => match self.get("CHANTYPES") {
                None => first == '#' || first == '&',
                Some(v) => v.unwrap_or("").contains(first),
            },
            None => false,
        }
    }

    /// Encode tokens back into 005 parameter strings (value escaped: space -> \x20, backslash -> \x5C, other non-printables \xHH), used when regenerating 005 lines for clients.
    ///
    /// Non-printables are the ASCII control characters; other characters,
    /// including non-ASCII, are sent as is. An empty value is rendered
    /// without the `=`. To withdraw a token, pass `-NAME` and no value.
    pub fn encode_token(name: &str, value: Option<&str>) -> String {
        let mut out = String::from(name);
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push('=');
            for c in value.chars() {
                if c == ' ' || c == '\\' || c.is_ascii_control() {
                    // All three cases are single-byte ASCII characters.
                    out.push_str(&format!("\\x{:02X}", u32::from(c)));
                } else {
                    out.push(c);
                }
            }
        }
        out
    }
}

/// Split encoded tokens into groups of at most 13 per 005 line
pub fn chunk_tokens(tokens: &[String]) -> Vec<Vec<String>> {
    tokens
        .chunks(TOKENS_PER_LINE)
        .map(|chunk| chunk.to_vec())
        .collect()
}

/// Value of an ASCII hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `\xHH` escapes. Backslashes not starting a valid escape are kept
/// literally; escapes producing invalid UTF-8 are replaced with U+FFFD.
fn unescape_value(value: &str) -> String {
    if !value.contains('\\') {
        return value.to_owned();
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hi = bytes.get(i + 2).copied().and_then(hex_digit);
            let lo = bytes.get(i + 3).copied().and_then(hex_digit);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_when_empty() {
        let is = Isupport::new();
        assert_eq!(is.casemapping(), CaseMapping::Rfc1459);
        assert_eq!(is.chantypes(), "#&");
        assert_eq!(is.prefix(), vec![('o', '@'), ('v', '+')]);
        assert_eq!(
            is.chanmodes(),
            [
                "beI".to_string(),
                "k".to_string(),
                "l".to_string(),
                "imnpst".to_string()
            ]
        );
        assert_eq!(is.network(), None);
        assert!(is.is_channel("#foo"));
        assert!(is.is_channel("&foo"));
        assert!(!is.is_channel("nick"));
        assert!(!is.is_channel(""));
        assert_eq!(is.tokens().count(), 0);
    }

    #[test]
    fn apply_forms() {
        let mut is = Isupport::new();
        is.apply(&strings(&[
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            "PREFIX=(qaohv)~&@%+",
            "CHANMODES=eIbq,k,flj,CFLMPQcgimnprstz",
            "NETWORK=Libera.Chat",
            "WHOX",
            "EXCEPTS=",
        ]));
        assert_eq!(is.casemapping(), CaseMapping::Ascii);
        assert_eq!(is.chantypes(), "#");
        assert!(is.is_channel("#x"));
        assert!(!is.is_channel("&x"));
        assert_eq!(
            is.prefix(),
            vec![('q', '~'), ('a', '&'), ('o', '@'), ('h', '%'), ('v', '+')]
        );
        assert_eq!(is.chanmodes()[2], "flj");
        assert_eq!(is.chanmodes()[3], "CFLMPQcgimnprstz");
        assert_eq!(is.network(), Some("Libera.Chat"));
        assert_eq!(is.get("WHOX"), Some(None));
        assert_eq!(is.get("EXCEPTS"), Some(None));
        assert!(is.contains("WHOX"));
        assert_eq!(is.get("whox"), None);
        assert_eq!(is.get("NOPE"), None);
    }

    #[test]
    fn later_value_replaces_in_place() {
        let mut is = Isupport::new();
        is.apply(&strings(&["A=1", "B=2", "C"]));
        is.apply(&strings(&["A=3", "D=4"]));
        let got: Vec<_> = is.tokens().collect();
        assert_eq!(
            got,
            vec![
                ("A", Some("3")),
                ("B", Some("2")),
                ("C", None),
                ("D", Some("4"))
            ]
        );
    }

    #[test]
    fn negation_removes() {
        let mut is = Isupport::new();
        is.apply(&strings(&["CHANTYPES=#", "NETWORK=x", "WHOX"]));
        is.apply(&strings(&["-CHANTYPES", "-WHOX", "-ABSENT"]));
        assert!(!is.contains("CHANTYPES"));
        assert!(!is.contains("WHOX"));
        assert_eq!(is.chantypes(), "#&");
        assert_eq!(is.network(), Some("x"));
        // A removed token can come back, at the end.
        is.apply(&strings(&["WHOX"]));
        let names: Vec<_> = is.tokens().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["NETWORK", "WHOX"]);
    }

    #[test]
    fn empty_values_mean_none() {
        let mut is = Isupport::new();
        is.apply(&strings(&["CHANTYPES=", "PREFIX=", "CHANMODES="]));
        assert_eq!(is.chantypes(), "");
        assert!(!is.is_channel("#foo"));
        assert!(is.prefix().is_empty());
        assert_eq!(is.chanmodes(), <[String; 4]>::default());

        let mut is = Isupport::new();
        is.apply(&strings(&["CHANTYPES", "PREFIX"]));
        assert_eq!(is.chantypes(), "");
        assert!(is.prefix().is_empty());
    }

    #[test]
    fn malformed_values() {
        let mut is = Isupport::new();
        is.apply(&strings(&[
            "PREFIX=ov@+",
            "CASEMAPPING=rfc7613",
            "CHANMODES=b,k",
            "",
            "=x",
            "-",
        ]));
        assert!(is.prefix().is_empty());
        assert_eq!(is.casemapping(), CaseMapping::Rfc1459);
        assert_eq!(
            is.chanmodes(),
            [
                "b".to_string(),
                "k".to_string(),
                String::new(),
                String::new()
            ]
        );
        assert_eq!(is.tokens().count(), 3);

        is.apply(&strings(&["PREFIX=(ov)@"]));
        assert!(is.prefix().is_empty());
    }

    #[test]
    fn escapes_decoded() {
        let mut is = Isupport::new();
        is.apply(&strings(&[
            "NETWORK=My\\x20Net\\x5Cwork\\x3d",
            "BAD=a\\xZZ\\x4",
            "UTF=\\xC3\\xA9",
            "BROKEN=\\xFF",
        ]));
        assert_eq!(is.network(), Some("My Net\\work="));
        assert_eq!(is.get("BAD"), Some(Some("a\\xZZ\\x4")));
        assert_eq!(is.get("UTF"), Some(Some("é")));
        assert_eq!(is.get("BROKEN"), Some(Some("\u{FFFD}")));
    }

    #[test]
    fn encode() {
        assert_eq!(Isupport::encode_token("WHOX", None), "WHOX");
        assert_eq!(Isupport::encode_token("EXCEPTS", Some("")), "EXCEPTS");
        assert_eq!(Isupport::encode_token("-WHOX", None), "-WHOX");
        assert_eq!(
            Isupport::encode_token("NETWORK", Some("My Net\\work\x01é=")),
            "NETWORK=My\\x20Net\\x5Cwork\\x01é="
        );
        assert_eq!(
            Isupport::encode_token("PREFIX", Some("(ov)@+")),
            "PREFIX=(ov)@+"
        );
    }

    #[test]
    fn chunking() {
        let tokens: Vec<String> = (0..27).map(|i| format!("T{i}")).collect();
        let chunks = chunk_tokens(&tokens);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![13, 13, 1]
        );
        assert_eq!(chunks.concat(), tokens);
        assert!(chunk_tokens(&[]).is_empty());
        assert_eq!(chunk_tokens(&tokens[..13]).len(), 1);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(value in any::<String>(), name in "[A-Z]{1,10}") {
            let encoded = Isupport::encode_token(&name, Some(&value));
            prop_assert!(!encoded.contains(' '));
            prop_assert!(!encoded.chars().any(|c| c.is_ascii_control()));
            let mut is = Isupport::new();
            is.apply(&[encoded]);
            let expected = if value.is_empty() { None } else { Some(value.as_str()) };
            prop_assert_eq!(is.get(&name), Some(expected));
        }
    }
}
