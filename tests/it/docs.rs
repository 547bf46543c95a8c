//! The documentation keeps up with the code: every configuration directive
//! is described in `doc/tether.1` and the README, and every BouncerServ
//! command in `doc/tetherctl.1` and the README's command table.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The text of a man page with roff's font changes and escaped hyphens
/// undone, so that `\fBdevice\-certificate create\fR` reads as
/// `device-certificate create`.
fn man_text(relative: &str) -> String {
    let mut text = read(relative).replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

#[test]
fn every_directive_is_documented() {
    let man = man_text("doc/tether.1");
    let readme = read("README.md");
    let mut missing = Vec::new();
    for name in tether::config::directive_names() {
        let in_man = man
            .lines()
            .any(|l| l.starts_with(".B") && l.split([' ', '"']).any(|w| w == name));
        if !in_man {
            missing.push(format!("{name} in doc/tether.1"));
        }
        if !readme.contains(&format!("`{name}")) {
            missing.push(format!("{name} in README.md"));
        }
    }
    assert!(missing.is_empty(), "undocumented directives: {missing:#?}");
}

#[test]
fn every_bouncerserv_command_is_documented() {
    let man = man_text("doc/tetherctl.1");
    let readme = read("README.md");
    let mut missing = Vec::new();
    for spec in tether::service::COMMANDS {
        let name = spec.path.join(" ");
        if !man.contains(&name) {
            missing.push(format!("{name} in doc/tetherctl.1"));
        }
        if !readme.contains(&format!("| `{name}`")) {
            missing.push(format!("{name} in README.md"));
        }
    }
    assert!(missing.is_empty(), "undocumented commands: {missing:#?}");
}
