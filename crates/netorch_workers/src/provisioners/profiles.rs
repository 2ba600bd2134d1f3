//! The provisioner profiles file (`--provisioners FILE`, TOML): the external provisioners a
//! worker can run, by name. docs/PROVISIONERS.md is its user's guide.
//!
//! ```toml
//! [profiles.lab]
//! kind = "command"
//! command = ["/usr/local/bin/provision-switch", "--site", "lab"]
//! max_concurrent_runs = 16
//!
//! [profiles.campus]
//! kind = "ansible"
//! project_directory = "/srv/ansible/campus"
//! playbooks = { provision = "provision.yml", configure = "configure.yml" }
//! ```

use netorch_domain::Phase;
use netorch_domain::provisioning::{BUILTIN_PROFILE, is_profile_name};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Runs of one profile a worker has going at once unless its profile says otherwise.
pub const DEFAULT_MAX_CONCURRENT_RUNS: u32 = 16;

/// A profiles file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("the provisioner profiles file {path}: {reason}")]
pub struct ProfilesError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The profiles of a file, by name (`simulator` is never among them: every worker has it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
}

/// One external provisioner.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its name, as deployments give it.
    pub name: String,
    /// What it runs.
    pub program: Program,
    /// At most this many of its runs at once in one worker (more wait for a free place; the
    /// deployment's `max_in_flight` bounds them across workers).
    pub max_concurrent_runs: u32,
    /// The directory its programs run in (the worker's own when absent).
    pub working_directory: Option<PathBuf>,
    /// Environment variables its programs get, besides `PATH`, `HOME`, `LANG` and `TMPDIR`
    /// (nothing else of the worker's environment is passed on: it holds the database's URL).
    pub env: BTreeMap<String, String>,
}

/// What a profile runs per node phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// A program given the phase as its last argument and the node as JSON on stdin
    /// (docs/PROVISIONERS.md, "The command protocol").
    Command {
        /// The program and its first arguments.
        argv: Vec<String>,
    },
    /// A playbook per phase, run by ansible-runner.
    Ansible {
        /// The `ansible-runner` executable.
        runner: String,
        /// Where the playbooks are.
        project_directory: PathBuf,
        /// The playbook of each phase; a phase without one succeeds at once.
        playbooks: BTreeMap<&'static str, String>,
    },
}

impl Profile {
    /// Whether this profile runs anything for `phase` (an Ansible profile without a playbook
    /// for it does not: the phase succeeds at once).
    pub fn runs(&self, phase: Phase) -> bool {
        match &self.program {
            Program::Command { .. } => true,
            Program::Ansible { playbooks, .. } => playbooks.contains_key(phase.as_str()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileShape>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum ProfileShape {
    Command(CommandShape),
    Ansible(AnsibleShape),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandShape {
    command: Vec<String>,
    max_concurrent_runs: Option<u32>,
    working_directory: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnsibleShape {
    project_directory: PathBuf,
    playbooks: BTreeMap<String, String>,
    ansible_runner: Option<String>,
    max_concurrent_runs: Option<u32>,
    working_directory: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

impl Profiles {
    /// Reads and checks the profiles file at `path`.
    pub fn load(path: &Path) -> Result<Profiles, ProfilesError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfilesError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Profiles::parse(&text).map_err(|reason| ProfilesError {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses and checks a profiles file's text.
    pub fn parse(text: &str) -> Result<Profiles, String> {
        let shape: FileShape = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut profiles = BTreeMap::new();
        for (name, profile) in shape.profiles {
            if !is_profile_name(&name) {
                return Err(format!(
                    "profile name {name:?}: 1 to 64 ASCII letters, digits, '-', '_' and '.', \
                     starting with a letter or digit"
                ));
            }
            if name == BUILTIN_PROFILE {
                return Err(format!(
                    "profile name {name:?} is the workers' built-in provisioner's"
                ));
            }
            let bad = |reason: String| format!("profile {name:?}: {reason}");
            let profile = match profile {
                ProfileShape::Command(c) => {
                    if c.command.first().is_none_or(|program| program.is_empty()) {
                        return Err(bad("command must name a program".into()));
                    }
                    Profile {
                        name: name.clone(),
                        program: Program::Command { argv: c.command },
                        max_concurrent_runs: concurrency(c.max_concurrent_runs).map_err(bad)?,
                        working_directory: c.working_directory,
                        env: c.env,
                    }
                }
                ProfileShape::Ansible(a) => {
                    let mut playbooks = BTreeMap::new();
                    for (phase, playbook) in a.playbooks {
                        let phase: Phase = phase.parse().map_err(|_| {
                            bad(format!(
                                "playbooks: {phase:?} is no phase: use provision, configure or \
                                 release"
                            ))
                        })?;
                        if playbook.is_empty() {
                            return Err(bad(format!("playbooks.{}: empty", phase.as_str())));
                        }
                        playbooks.insert(phase.as_str(), playbook);
                    }
                    Profile {
                        name: name.clone(),
                        program: Program::Ansible {
                            runner: a.ansible_runner.unwrap_or_else(|| "ansible-runner".into()),
                            project_directory: a.project_directory,
                            playbooks,
                        },
                        max_concurrent_runs: concurrency(a.max_concurrent_runs).map_err(bad)?,
                        working_directory: a.working_directory,
                        env: a.env,
                    }
                }
            };
            profiles.insert(name, profile);
        }
        Ok(Profiles { profiles })
    }

    /// The profile named `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Every profile, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The names a deployment may give: `simulator` and the file's.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(BUILTIN_PROFILE.to_owned())
            .chain(self.profiles.keys().cloned())
            .collect()
    }
}

fn concurrency(value: Option<u32>) -> Result<u32, String> {
    match value {
        None => Ok(DEFAULT_MAX_CONCURRENT_RUNS),
        Some(n @ 1..=4096) => Ok(n),
        Some(n) => Err(format!(
            "max_concurrent_runs must be from 1 to 4096, got {n}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_both_kinds_parses() {
        let profiles = Profiles::parse(
            r#"
            [profiles.lab]
            kind = "command"
            command = ["/bin/provision", "--site", "lab"]
            env = { SITE = "lab" }

            [profiles.campus]
            kind = "ansible"
            project_directory = "/srv/ansible"
            playbooks = { provision = "p.yml", configure = "c.yml" }
            max_concurrent_runs = 4
            "#,
        )
        .expect("parses");
        assert_eq!(profiles.names(), ["simulator", "campus", "lab"]);
        let lab = profiles.get("lab").expect("lab");
        assert_eq!(lab.max_concurrent_runs, DEFAULT_MAX_CONCURRENT_RUNS);
        assert_eq!(lab.env["SITE"], "lab");
        assert!(lab.runs(Phase::Decommissioning));
        let campus = profiles.get("campus").expect("campus");
        assert_eq!(campus.max_concurrent_runs, 4);
        assert!(campus.runs(Phase::Configuring));
        assert!(!campus.runs(Phase::Decommissioning));
        match &campus.program {
            Program::Ansible { runner, .. } => assert_eq!(runner, "ansible-runner"),
            other => panic!("{other:?}"),
        }
        assert!(Profiles::parse("").expect("empty").is_empty());
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let refused = |text: &str, says: &str| {
            let e = Profiles::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        };
        refused(
            "[profiles.simulator]\nkind = \"command\"\ncommand = [\"x\"]",
            "built-in",
        );
        refused(
            "[profiles.\"a b\"]\nkind = \"command\"\ncommand = [\"x\"]",
            "profile name",
        );
        refused(
            "[profiles.x]\nkind = \"command\"\ncommand = []",
            "must name a program",
        );
        refused(
            "[profiles.x]\nkind = \"shell\"\ncommand = [\"x\"]",
            "unknown variant",
        );
        refused(
            "[profiles.x]\nkind = \"command\"\ncommand = [\"x\"]\ncommnd = 1",
            "commnd",
        );
        refused(
            "[profiles.x]\nkind = \"ansible\"\nproject_directory = \"/p\"\nplaybooks = { deploy = \"d.yml\" }",
            "no phase",
        );
        refused(
            "[profiles.x]\nkind = \"command\"\ncommand = [\"x\"]\nmax_concurrent_runs = 0",
            "from 1 to 4096",
        );
        refused("[profile.x]\nkind = \"command\"", "profile");
    }
}
