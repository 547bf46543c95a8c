//! BouncerServ word splitting: never panics, and quoting the words of any
//! line that splits gives a line that splits into the same words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether::service::words::{quote_word, split_words};

fn requote(words: &[String]) -> String {
    words
        .iter()
        .map(|w| quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(words) = split_words(text) {
        assert_eq!(split_words(&requote(&words)).as_ref(), Ok(&words));
    }
    // The same bytes read as an argument vector (NUL-separated, as argv
    // is), the way tetherctl sends one.
    let argv: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(split_words(&requote(&argv)), Ok(argv));
});
