//! The codex versions this server is tested with, named once in the repository's
//! `codex-versions` file (the Makefile installs and tests the oldest and the newest of them),
//! and what a `codex --version` line says against them.

use std::fmt;

/// `codex-versions`: one version a line, oldest first.
const LIST: &str = include_str!("../../codex-versions");

/// A `major.minor.patch` version; a pre-release or build suffix is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u64, u64, u64);

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    /// The version in `codex --version`'s line (`codex-cli 0.171.0`).
    pub fn from_version_line(line: &str) -> Option<Version> {
        line.split_whitespace().find_map(Version::parse)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The oldest and newest supported versions, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    pub oldest: Version,
    pub newest: Version,
}

impl Supported {
    pub fn contains(&self, version: Version) -> bool {
        self.oldest <= version && version <= self.newest
    }
}

impl fmt::Display for Supported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.oldest, self.newest)
    }
}

/// The supported range, from `codex-versions`.
pub fn supported() -> Supported {
    let versions: Vec<Version> = LIST.lines().filter_map(Version::parse).collect();
    match (versions.first(), versions.last()) {
        (Some(&oldest), Some(&newest)) => Supported { oldest, newest },
        _ => unreachable!("codex-versions names at least one version (checked by a test)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_file_lists_versions_oldest_first() {
        let versions: Vec<Option<Version>> = LIST.lines().map(Version::parse).collect();
        assert!(!versions.is_empty());
        assert!(versions.iter().all(Option::is_some), "{LIST}");
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{LIST}");
        let range = supported();
        assert!(range.contains(range.oldest) && range.contains(range.newest));
    }

    #[test]
    fn version_lines_are_read_and_compared() {
        let range = Supported {
            oldest: Version(0, 169, 0),
            newest: Version(0, 171, 0),
        };
        for (line, inside) in [
            ("codex-cli 0.169.0", Some(true)),
            ("codex-cli 0.170.2", Some(true)),
            ("codex-cli 0.171.0-alpha.3", Some(true)),
            ("codex-cli 0.168.9", Some(false)),
            ("codex-cli 0.172.0", Some(false)),
            ("codex-cli 1.0.0", Some(false)),
            ("codex-cli", None),
            ("fake", None),
        ] {
            assert_eq!(
                Version::from_version_line(line).map(|v| range.contains(v)),
                inside,
                "{line}"
            );
        }
        assert_eq!(range.to_string(), "0.169.0 to 0.171.0");
    }
}
