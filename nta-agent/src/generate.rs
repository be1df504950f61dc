//! Man pages and shell completions, generated from the command line's clap
//! definition by the hidden `nta-agent generate` command: the Debian package
//! ships them, so they list exactly the options the binary it ships takes.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Why a man page or completion script could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("creating {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {what} into {dir}: {source}")]
    Write {
        what: String,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `nta-agent.1` and a page per visible subcommand, nested ones
/// included (`nta-agent-run.1`, `nta-agent-config-check.1`, ...), into
/// `dir`, created if missing; returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    // `help` is clap's, not nta's: it gets no page of its own.
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Built first, so that each subcommand knows its display name
    // (`nta-agent-run`), which names its page.
    cli.build();
    let mut written = Vec::new();
    write_pages(&cli, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: &clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), GenerateError> {
    let man = clap_mangen::Man::new(command.clone());
    let path = man
        .generate_to(dir)
        .map_err(|source| GenerateError::Write {
            what: man.get_filename(),
            dir: dir.to_owned(),
            source,
        })?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// Writes the bash (`nta-agent.bash`), zsh (`_nta-agent`) and fish
/// (`nta-agent.fish`) completion scripts into `dir`, created if missing;
/// returns the files written.
pub fn completions(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    let mut cli = Cli::command();
    let name = cli.get_name().to_owned();
    let mut written = Vec::new();
    for shell in SHELLS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli, &name, &mut script);
        let mut script = String::from_utf8_lossy(&script).into_owned();
        if shell == Shell::Bash {
            script = fix_hyphenated_bash(&script, &name);
        }
        let path = dir.join(clap_complete::Generator::file_name(&shell, &name));
        fs::write(&path, script).map_err(|source| GenerateError::Write {
            what: format!("the {shell} completions"),
            dir: dir.to_owned(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// clap_complete's bash script names a subcommand's state in two ways when
/// the binary's name has a hyphen (clap-rs/clap#6421): the loop reading the
/// words arrives at `nta__agent__subcmd__run`, the case arms wait for
/// `nta__subcmd__agent__subcmd__run`, so no subcommand's options would ever
/// complete. Spelled the loop's way; a no-op once clap_complete is fixed.
fn fix_hyphenated_bash(script: &str, name: &str) -> String {
    let escaped = name.replace('-', "__");
    let misspelled = name.replace('-', "__subcmd__");
    script.replace(
        &format!("{misspelled}__subcmd__"),
        &format!("{escaped}__subcmd__"),
    )
}

fn create_dir(dir: &Path) -> Result<(), GenerateError> {
    fs::create_dir_all(dir).map_err(|source| GenerateError::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect()
    }

    #[test]
    fn writes_a_man_page_for_the_agent_and_each_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(&dir.path().join("man1")).unwrap();
        let names = names(&written);
        for page in [
            "nta-agent.1",
            "nta-agent-run.1",
            "nta-agent-read.1",
            "nta-agent-config.1",
            "nta-agent-config-check.1",
            "nta-agent-block-add.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} in {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("generate") || n.contains("help")),
            "hidden and help commands get no page: {names:?}"
        );
        let run = fs::read_to_string(dir.path().join("man1/nta-agent-run.1")).unwrap();
        assert!(run.contains("iface"), "{run}");
        let top = fs::read_to_string(dir.path().join("man1/nta-agent.1")).unwrap();
        assert!(
            !top.contains("generate"),
            "the hidden command is not listed"
        );
    }

    #[test]
    fn writes_bash_zsh_and_fish_completions_that_know_run_and_iface() {
        let dir = tempfile::tempdir().unwrap();
        let written = completions(dir.path()).unwrap();
        let mut names = names(&written);
        names.sort();
        assert_eq!(names, ["_nta-agent", "nta-agent.bash", "nta-agent.fish"]);
        for path in &written {
            let script = fs::read_to_string(path).unwrap();
            assert!(
                script.contains("run") && script.contains("iface"),
                "{}",
                path.display()
            );
        }
        // The case arm for `nta-agent run`'s options, as the loop names it.
        let bash = fs::read_to_string(dir.path().join("nta-agent.bash")).unwrap();
        assert!(
            bash.contains("        nta__agent__subcmd__run)\n"),
            "{bash}"
        );
        assert!(!bash.contains("nta__subcmd__agent"), "{bash}");
    }
}
