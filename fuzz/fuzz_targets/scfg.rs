//! The scfg parser and the typed configuration on top of it: never panic,
//! and a parsed document written back out (quoting every word) parses to
//! the same directives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether::config::Config;
use tether::config::scfg::{Directive, parse};

fn quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn render(directives: &[Directive], out: &mut String) {
    for d in directives {
        out.push_str(&quote(&d.name));
        for p in &d.params {
            out.push(' ');
            out.push_str(&quote(p));
        }
        if d.children.is_empty() {
            out.push('\n');
        } else {
            out.push_str(" {\n");
            render(&d.children, out);
            out.push_str("}\n");
        }
    }
}

/// Names, parameters and children, without line numbers.
#[derive(Debug, PartialEq)]
struct Shape(String, Vec<String>, Vec<Shape>);

fn shape(ds: &[Directive]) -> Vec<Shape> {
    ds.iter()
        .map(|d| Shape(d.name.clone(), d.params.clone(), shape(&d.children)))
        .collect()
}

fn names_motd(ds: &[Directive]) -> bool {
    ds.iter()
        .any(|d| d.name == "motd" || names_motd(&d.children))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = parse(text) else {
        let _ = Config::parse_str(text);
        return;
    };
    // `motd` reads the named file: keep the fuzzer away from the disk.
    if !names_motd(&doc) {
        let _ = Config::parse_str(text);
    }
    let mut again = String::new();
    render(&doc, &mut again);
    match parse(&again) {
        Ok(back) => assert_eq!(shape(&back), shape(&doc), "{again:?}"),
        Err(e) => panic!("rendered document {again:?} does not parse: {e}"),
    }
});
