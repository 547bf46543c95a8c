//! ZNC's per-module data next to the configuration: the `sasl` module's
//! credentials and the `cert` module's client certificate.
//!
//! Layout under ZNC's data directory (the parent of the `configs`
//! directory holding `znc.conf`): `users/<user>/networks/<network>/moddata/
//! <module>/` for network modules, `users/<user>/moddata/<module>/` for user
//! modules (and for the one implicit network of an old, pre-network
//! configuration). A module's settings are in `.registry` there: one
//! `key value` line per setting, each side with every byte that is not an
//! ASCII letter or digit written as `%xx;` (hex).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// ZNC's data directory for the configuration at `conf`: the parent of
/// its `configs` directory, else the directory holding it.
pub fn data_dir(conf: &Path) -> PathBuf {
    let parent = conf.parent().unwrap_or(Path::new("."));
    match parent.file_name() {
        Some(name) if name == "configs" => parent.parent().unwrap_or(parent).to_path_buf(),
        _ => parent.to_path_buf(),
    }
}

/// The `moddata/<module>` directory of a user's network, or of the user
/// when `network` is `None`.
pub fn module_dir(data: &Path, user: &str, network: Option<&str>, module: &str) -> PathBuf {
    let mut dir = data.join("users").join(user);
    if let Some(net) = network {
        dir = dir.join("networks").join(net);
    }
    dir.join("moddata").join(module)
}

/// Decodes the `%xx;` escapes of one side of a registry line. An escape
/// that is not well formed is kept as it is.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digits = bytes[i + 1..]
                .iter()
                .take(2)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if digits > 0 && bytes.get(i + 1 + digits) == Some(&b';') {
                let byte = bytes[i + 1..i + 1 + digits]
                    .iter()
                    .fold(0u8, |acc, &b| acc * 16 + hex_value(b));
                out.push(byte);
                i += digits + 2;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Parses the text of a `.registry` file.
pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            (!key.is_empty()).then(|| (decode(key), decode(value.trim())))
        })
        .collect()
}

/// Reads a module's `.registry` in `dir`; `None` if there is none.
pub fn read(dir: &Path) -> Option<HashMap<String, String>> {
    std::fs::read_to_string(dir.join(".registry"))
        .ok()
        .map(|text| parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode() {
        assert_eq!(decode("abc"), "abc");
        assert_eq!(decode("p%40;ss%20;w%3b;rd"), "p@ss w;rd");
        assert_eq!(decode("%40ss%2"), "%40ss%2");
        assert_eq!(decode("%c3;%a9;"), "é");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz;x"), "%zz;x");
        assert_eq!(decode("%;"), "%;");
    }

    #[test]
    fn registry_lines_parse() {
        let reg =
            parse("username alice\npassword p%40;ss\nmechanisms EXTERNAL%20;PLAIN\n\nempty\n");
        assert_eq!(reg["username"], "alice");
        assert_eq!(reg["password"], "p@ss");
        assert_eq!(reg["mechanisms"], "EXTERNAL PLAIN");
        assert_eq!(reg["empty"], "");
    }

    #[test]
    fn data_dir_and_module_dirs() {
        assert_eq!(
            data_dir(Path::new("/home/z/.znc/configs/znc.conf")),
            PathBuf::from("/home/z/.znc")
        );
        assert_eq!(
            data_dir(Path::new("/tmp/x/znc.conf")),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(
            module_dir(Path::new("/d"), "al", Some("libera"), "sasl"),
            PathBuf::from("/d/users/al/networks/libera/moddata/sasl")
        );
        assert_eq!(
            module_dir(Path::new("/d"), "al", None, "cert"),
            PathBuf::from("/d/users/al/moddata/cert")
        );
    }
}
