//! Which web pages may open a WebSocket connection to tether.
//!
//! Browsers send an `Origin` header with every WebSocket handshake, and a
//! page can open connections to any host, so without a check any site a
//! user visits could talk to their bouncer with the browser's network
//! position. Requests without `Origin` come from programs that are not
//! browsers and are always allowed (they could send any header anyway).
//! With `http-origin` patterns configured, an origin must match one of
//! them; without, it must be the page served from the host the request
//! was sent to.

/// Whether a WebSocket handshake may proceed. `origin` is the request's
/// `Origin` header (`None` when absent), `host` its `Host` header.
pub fn allowed(patterns: &[String], origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if !patterns.is_empty() {
        return patterns.iter().any(|p| glob_match(p, origin));
    }
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .map(authority_host);
    match (origin_host, host.map(authority_host)) {
        (Some(o), Some(h)) => !o.is_empty() && o.eq_ignore_ascii_case(h),
        _ => false,
    }
}

/// The host of `host[:port]`, IPv6 literals keeping their brackets.
fn authority_host(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether `text` matches `pattern`, where `*` stands for any run of
/// characters (also none); ASCII letters match regardless of case, since
/// scheme and host names are case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it currently stands up to;
    // on a mismatch it swallows one more byte and matching resumes.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi, ti));
            pi += 1;
        } else if p.get(pi).is_some_and(|c| c.eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match(
            "https://app.example.org",
            "https://app.example.org"
        ));
        assert!(glob_match(
            "https://APP.example.org",
            "https://app.Example.org"
        ));
        assert!(!glob_match(
            "https://app.example.org",
            "https://app.example.org.evil"
        ));
        assert!(glob_match(
            "https://*.example.org",
            "https://a.b.example.org"
        ));
        assert!(!glob_match("https://*.example.org", "https://example.org"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "null"));
        assert!(glob_match("http*://*:*", "https://h:1"));
        assert!(!glob_match("http*://*:*", "https://h"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn no_origin_is_allowed() {
        assert!(allowed(&[], None, None));
        assert!(allowed(&["https://x".into()], None, Some("y")));
    }

    #[test]
    fn configured_patterns_decide() {
        let p = vec![
            "https://app.example.org".to_string(),
            "http://localhost:*".into(),
        ];
        assert!(allowed(
            &p,
            Some("https://app.example.org"),
            Some("irc.example.org")
        ));
        assert!(allowed(&p, Some("http://localhost:8080"), None));
        assert!(!allowed(
            &p,
            Some("https://evil.example"),
            Some("evil.example")
        ));
        // Same-origin does not apply once patterns are configured.
        assert!(!allowed(
            &p,
            Some("https://irc.example.org"),
            Some("irc.example.org")
        ));
    }

    #[test]
    fn same_host_without_patterns() {
        assert!(allowed(
            &[],
            Some("https://irc.example.org"),
            Some("irc.example.org")
        ));
        assert!(allowed(
            &[],
            Some("https://IRC.example.org:8443"),
            Some("irc.example.org:443")
        ));
        assert!(allowed(&[], Some("http://[::1]:8080"), Some("[::1]:8080")));
        assert!(!allowed(
            &[],
            Some("https://evil.example"),
            Some("irc.example.org")
        ));
        assert!(!allowed(
            &[],
            Some("https://irc.example.org.evil"),
            Some("irc.example.org")
        ));
        assert!(!allowed(&[], Some("null"), Some("irc.example.org")));
        assert!(!allowed(&[], Some("https://irc.example.org"), None));
        assert!(!allowed(&[], Some("https://"), Some("")));
    }
}
