//! The outcome of an import: what was created, updated, left unchanged or
//! skipped, what could not be carried over (per user and network), and the
//! passwords generated for new users. Its `Display` form is what `tether
//! import` prints.

use std::fmt;

/// What happened to the records of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not in tether before; created.
    pub created: usize,
    /// Already in tether and changed to match the source.
    pub updated: usize,
    /// Already in tether and identical.
    pub unchanged: usize,
    /// Not imported (see the notes).
    pub skipped: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged, {} skipped",
            self.created, self.updated, self.unchanged, self.skipped
        )
    }
}

/// One thing that could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `None` for the whole import, else the user it concerns.
    pub user: Option<String>,
    /// The network it concerns, if any.
    pub network: Option<String>,
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.network) {
            (None, _) => write!(f, "{}", self.text),
            (Some(user), None) => write!(f, "user {user}: {}", self.text),
            (Some(user), Some(net)) => write!(f, "user {user}, network {net}: {}", self.text),
        }
    }
}

/// The result of [`super::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `soju` or `ZNC`.
    pub kind: &'static str,
    pub users: Counts,
    pub networks: Counts,
    pub channels: Counts,
    pub read_markers: Counts,
    pub device_certs: Counts,
    /// What could not be carried over, in source order.
    pub notes: Vec<Note>,
    /// `(username, password)` of users created with a random password.
    pub passwords: Vec<(String, String)>,
}

impl Report {
    pub(crate) fn note(&mut self, user: Option<&str>, network: Option<&str>, text: String) {
        self.notes.push(Note {
            user: user.map(str::to_string),
            network: network.map(str::to_string),
            text,
        });
    }

    /// Whether the second run of an import would change nothing: nothing
    /// was created or updated.
    pub fn is_no_op(&self) -> bool {
        [
            self.users,
            self.networks,
            self.channels,
            self.read_markers,
            self.device_certs,
        ]
        .iter()
        .all(|c| c.created == 0 && c.updated == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Imported from {}:", self.kind)?;
        writeln!(f, "  users:        {}", self.users)?;
        writeln!(f, "  networks:     {}", self.networks)?;
        writeln!(f, "  channels:     {}", self.channels)?;
        writeln!(f, "  read markers: {}", self.read_markers)?;
        writeln!(f, "  device certificates: {}", self.device_certs)?;
        if self.notes.is_empty() {
            writeln!(f, "Everything was carried over.")?;
        } else {
            writeln!(f, "Not carried over:")?;
            for note in &self.notes {
                writeln!(f, "  {note}")?;
            }
        }
        if !self.passwords.is_empty() {
            writeln!(
                f,
                "New passwords (shown only this once; change them with BouncerServ \"user update -password\"):"
            )?;
            for (user, password) in &self.passwords {
                writeln!(f, "  {user}: {password}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_counts_notes_and_passwords() {
        let mut report = Report {
            kind: "ZNC",
            users: Counts {
                created: 2,
                skipped: 1,
                ..Counts::default()
            },
            ..Report::default()
        };
        report.note(None, None, "listeners are not carried".into());
        report.note(Some("bob"), None, "AltNick".into());
        report.note(Some("bob"), Some("libera"), "BindHost".into());
        report.passwords.push(("bob".into(), "pw".into()));
        let text = report.to_string();
        assert!(
            text.contains("users:        2 created, 0 updated, 0 unchanged, 1 skipped"),
            "{text}"
        );
        assert!(text.contains("\n  listeners are not carried\n"), "{text}");
        assert!(text.contains("\n  user bob: AltNick\n"), "{text}");
        assert!(
            text.contains("\n  user bob, network libera: BindHost\n"),
            "{text}"
        );
        assert!(text.contains("\n  bob: pw\n"), "{text}");
        assert!(!report.is_no_op());
    }

    #[test]
    fn nothing_created_or_updated_is_a_no_op() {
        let report = Report {
            users: Counts {
                unchanged: 3,
                skipped: 1,
                ..Counts::default()
            },
            ..Report::default()
        };
        assert!(report.is_no_op());
        assert!(report.to_string().contains("Everything was carried over."));
    }
}
