//! CHATHISTORY, SEARCH and MARKREAD argument parsing: never panics, and
//! what it accepts respects the limit and names a target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether::history::chathistory::{Request, parse, parse_marker, parse_search};

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let max = usize::from(max);
    // Parameters as the message parser would give them: space-separated.
    let params: Vec<String> = text.split(' ').map(str::to_string).collect();
    match parse(&params, max) {
        Ok(req) => {
            let limit = match &req {
                Request::Latest { target, limit, .. }
                | Request::Before { target, limit, .. }
                | Request::After { target, limit, .. }
                | Request::Around { target, limit, .. }
                | Request::Between { target, limit, .. } => {
                    assert!(!target.is_empty());
                    *limit
                }
                Request::Targets { limit, .. } => *limit,
            };
            assert!(max == 0 || limit <= max);
        }
        Err(fail) => {
            let p = fail.to_params();
            assert!(p.len() >= 3);
        }
    }
    if let Ok(req) = parse_search(text, max) {
        assert!(max == 0 || req.limit <= max);
    }
    let _ = parse_marker(text);
});
