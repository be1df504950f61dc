//! Running external programs the way every task does: show the command first,
//! so that a user can rerun it by hand, and fail with an error naming it.

use std::{
    ffi::OsStr,
    fmt, io,
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, ExitCode, ExitStatus, Stdio},
};

use anyhow::{Context as _, anyhow, bail};

/// Announces a step, or the command a step runs.
pub fn step(text: impl fmt::Display) {
    println!("==> {text}");
}

/// Reports an outcome under the current step.
pub fn note(text: impl fmt::Display) {
    println!("    {text}");
}

/// A command together with the way it is shown to the user.
pub struct Cmd {
    command: Command,
    /// `VAR=value` assignments, program and arguments, quoted for a shell.
    shown: Vec<String>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        Self {
            command: Command::new(program),
            shown: vec![quote(program)],
        }
    }

    /// Runs `program` but shows it as `name`, for absolute paths that would
    /// only clutter the line (the toolchain's own cargo, for instance).
    pub fn shown_as(program: impl AsRef<OsStr>, name: &str) -> Self {
        Self {
            command: Command::new(program),
            shown: vec![name.to_owned()],
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.shown.push(quote(arg.as_ref()));
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// Sets a variable and shows it as a `VAR=value` prefix.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        let value = value.as_ref();
        let position = self.shown.iter().take_while(|s| is_assignment(s)).count();
        self.shown
            .insert(position, format!("{key}={}", quote(value)));
        self.command.env(key, value);
        self
    }

    /// Sets a variable without showing it: for values such as a whole PATH
    /// that would drown the command; the caller says what it changed.
    pub fn env_unshown(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.command.current_dir(dir);
        self
    }

    /// Runs with the terminal's stdio; fails unless the command succeeds.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let status = self.status()?;
        if !status.success() {
            bail!("`{self}` failed ({status})");
        }
        Ok(())
    }

    /// Runs with the terminal's stdio and returns how it ended, for callers
    /// that forward the exit code rather than fail.
    pub fn status(&mut self) -> anyhow::Result<ExitStatus> {
        step(&*self);
        self.command.status().map_err(|e| self.start_error(e))
    }

    /// Runs quietly and returns its standard output; fails unless the command
    /// succeeds, with what it printed on stderr.
    pub fn read(&mut self) -> anyhow::Result<String> {
        step(&*self);
        let output = self
            .command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.start_error(e))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            if stderr.is_empty() {
                bail!("`{self}` failed ({})", output.status);
            }
            bail!("`{self}` failed ({}): {stderr}", output.status);
        }
        String::from_utf8(output.stdout).with_context(|| format!("`{self}` printed non-UTF-8 text"))
    }

    /// Starts with stdout piped to us, for callers that read it as it comes.
    pub fn spawn_piped(&mut self) -> anyhow::Result<Child> {
        step(&*self);
        self.command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| self.start_error(e))
    }

    fn start_error(&self, error: io::Error) -> anyhow::Error {
        let program = self.command.get_program().to_string_lossy();
        if error.kind() == io::ErrorKind::NotFound {
            anyhow!("could not start `{self}`: `{program}` is not installed or not on PATH")
        } else {
            anyhow!(error).context(format!("could not start `{self}`"))
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown.join(" "))
    }
}

/// The exit code a shell would report for `status`: 128 + N for a death by
/// signal N, as bash does, so that a killed agent does not look successful.
pub fn exit_code(status: ExitStatus) -> ExitCode {
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Keeps xtask alive through Ctrl-C while it waits for a child.
///
/// The terminal sends SIGINT to the whole foreground process group, so the
/// child (the agent, cargo test) gets it directly and decides how to stop;
/// xtask must survive to report the child's exit code. A handler rather than
/// SIG_IGN, because an ignored signal stays ignored across exec and the agent
/// would then never see Ctrl-C; a handled one is reset to the default.
pub fn survive_sigint() -> anyhow::Result<()> {
    extern "C" fn do_nothing(_: libc::c_int) {}

    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the
    // handler does nothing, so it is trivially async-signal-safe.
    let result = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Without SA_RESTART, our blocking reads of the child's output would
        // fail with EINTR on Ctrl-C.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut())
    };
    if result != 0 {
        return Err(io::Error::last_os_error()).context("installing xtask's SIGINT handler");
    }
    Ok(())
}

fn is_assignment(shown: &str) -> bool {
    shown.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Quotes `word` for a POSIX shell, leaving plain words as they are.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_commands_as_a_shell_would_take_them() {
        let mut cmd = Cmd::shown_as("/abs/cargo", "cargo");
        cmd.args(["test", "--", "it's", ""])
            .env("LLVM_PREFIX", "/a b");
        assert_eq!(
            cmd.to_string(),
            r"LLVM_PREFIX='/a b' cargo test -- 'it'\''s' ''"
        );
    }

    #[test]
    fn keeps_env_assignments_in_the_order_given() {
        let mut cmd = Cmd::new("apt-get");
        cmd.env("A", "1").env("B", "2").arg("install");
        assert_eq!(cmd.to_string(), "A=1 B=2 apt-get install");
    }
}
