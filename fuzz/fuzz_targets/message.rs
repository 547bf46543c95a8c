//! The IRC message parser: any line either fails to parse or parses into a
//! message whose serialisation parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether::proto::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = line.parse::<Message>() else {
        return;
    };
    let wire = first.to_string();
    let second: Message = match wire.parse() {
        Ok(m) => m,
        Err(e) => panic!("own output {wire:?} does not parse: {e}"),
    };
    // Serialisation replaces CR, LF and NUL in parameters (they cannot be
    // sent); apart from that nothing may change, above all not the number
    // of parameters.
    assert_eq!(second.params.len(), first.params.len(), "{wire:?}");
    assert_eq!(second.command, first.command);
    assert_eq!(second.source, first.source);
    assert_eq!(second.tags, first.tags);
    for (a, b) in first.params.iter().zip(&second.params) {
        if !a.contains(['\r', '\n', '\0']) {
            assert_eq!(a, b, "{wire:?}");
        }
    }
    // Serialising is a fixed point after one round.
    assert_eq!(second.to_string(), wire);
});
