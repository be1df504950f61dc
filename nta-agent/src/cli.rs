//! Command-line interface.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sensor::XdpMode;

/// nta: network traffic analyzer and intrusion detector (eBPF/XDP).
#[derive(Debug, Parser)]
#[command(name = "nta-agent", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Attach the XDP sensor to an interface, detect attacks, serve the API.
    Run(RunArgs),
    /// Read capture files (pcap, pcapng) and inspect every TCP and UDP
    /// payload with the rules; needs no root. Exit 0 when the files were
    /// read whole, 1 when one was cut short or damaged, 2 when one is not
    /// a capture.
    Read(ReadArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with rules files (the Suricata/Snort content-matching subset).
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Work with notification channels (email, SMS, webhook).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Block or unblock sources in the running agent's XDP program.
    #[command(subcommand)]
    Block(BlockCommand),
    /// Write man pages or shell completions generated from these
    /// definitions (for packaging).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages: nta-agent.1 and one per subcommand (nta-agent-run.1, ...).
    Man {
        /// Folder to write them into, created if missing.
        dir: PathBuf,
    },
    /// Completion scripts for bash, zsh and fish.
    Completions {
        /// Folder to write them into, created if missing.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Drop every packet from a network (CIDR) or an address.
    Add {
        /// e.g. 198.51.100.7 or 198.51.100.0/24 or 2001:db8::/48.
        cidr: String,
        /// How long, e.g. 10m, 2h, 7d; without it, until removed.
        #[arg(long)]
        ttl: Option<String>,
        /// Why, shown in the list and the dashboard.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: BlockArgs,
    },
    /// Let a blocked network through again.
    Del {
        cidr: String,
        #[command(flatten)]
        common: BlockArgs,
    },
    /// List the blocks with what each has dropped.
    List {
        #[command(flatten)]
        common: BlockArgs,
    },
}

/// How `nta-agent block` reaches the agent.
#[derive(Debug, Clone, Args)]
pub struct BlockArgs {
    /// The agent's API.
    #[arg(long, env = "NTA_API", default_value = "http://127.0.0.1:3000")]
    pub api: String,
    /// The API token; by default read from the file the agent keeps beside
    /// its store (root only).
    #[arg(long, env = "NTA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The agent's store, to find its token file
    /// [default: ~/.local/share/nta/nta.redb].
    #[arg(long, env = "NTA_DB")]
    pub db: Option<PathBuf>,
    /// Trust only the certificates in this PEM file for an https:// API
    /// (the agent's own self-signed certificate, or its CA), as curl's
    /// --cacert; without it, the system's roots.
    #[arg(long, env = "NTA_CACERT", value_name = "PATH")]
    pub cacert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through every configured channel and report
    /// each result; exits 1 if any fails or none is configured.
    Test(NotifyArgs),
}

/// Where the notification settings come from.
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Configuration file (TOML) with a [notify] section.
    #[arg(long, short, env = "NTA_CONFIG")]
    pub config: Option<PathBuf>,

    /// File of NTA_SMTP_*, TWILIO_*, NTA_WEBHOOK_URL variables; variables
    /// already set in the environment win over it. A missing file is fine.
    #[arg(long, default_value = ".env")]
    pub env_file: PathBuf,

    /// The API's address, the default base of dashboard links in messages.
    #[arg(long, env = "NTA_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Parse rules files: every rejected rule with its line (on stderr),
    /// then per file how many loaded and were rejected, and the reasons
    /// with how many rules each rejected.
    Check {
        /// The rules files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Configuration file whose `[vars]` set `$HOME_NET` and the rest.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file without running; prints the effective
    /// settings, or every error with its line.
    Check {
        /// The TOML file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Configuration file (TOML): thresholds, windows, the DNS tunnel
    /// settings, the allowlist, as for `run`.
    #[arg(long, short, env = "NTA_CONFIG")]
    pub config: Option<PathBuf>,

    /// How often, in the capture's time, the detectors read the counters,
    /// as `run`'s interval.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Rules file(s): only these are loaded, as Suricata loads only the
    /// rule files it is given; without any, the embedded defaults.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Write Suricata's EVE JSON to this file (appended to), or to stdout
    /// with `-`.
    #[arg(long, value_name = "PATH")]
    pub eve: Option<crate::eve::EveTarget>,

    /// Also send every flow record to this IPFIX collector over UDP
    /// (IP:PORT, e.g. nfcapd's); wins over `[export] ipfix` in the config.
    /// A read waits for the socket rather than drop a message.
    #[arg(long, value_name = "IP:PORT", value_parser = crate::config::collector)]
    pub ipfix: Option<SocketAddr>,

    /// Also store the alerts in this store, which `nta-agent run` and its
    /// API serve later.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The capture files, read in timestamp order across them.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Interface to watch, e.g. eth0 or lo.
    #[arg(long, short)]
    pub iface: String,

    /// How to attach: native (in the driver), skb (generic, any device), or
    /// auto (native, falling back to skb where the driver lacks XDP).
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,

    /// How often the counters are read and a summary is logged, e.g. 1s, 500ms.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Configuration file (TOML): thresholds, windows, allowlist, overrides.
    /// Without one, the defaults apply (see nta.example.toml).
    #[arg(long, short, env = "NTA_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where alerts and traffic history are kept
    /// [default: ~/.local/share/nta/nta.redb].
    #[arg(long, env = "NTA_DB")]
    pub db: Option<PathBuf>,

    /// Extra rules file(s) loaded after the embedded defaults; repeatable.
    /// Rules that do not parse are reported with their line and skipped.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Address of the HTTP API and dashboard.
    #[arg(long, env = "NTA_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Token that API requests must carry (`Authorization: Bearer TOKEN`);
    /// required when --listen is not a loopback address. At least 16
    /// characters. Prefer NTA_TOKEN: arguments show in `ps`.
    #[arg(long, env = "NTA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Serve the API and dashboard over HTTPS with this certificate chain
    /// (PEM, the server's certificate first); needs --tls-key. Without
    /// it, plain HTTP.
    #[arg(long, env = "NTA_TLS_CERT", value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert's certificate (PEM: PKCS#8, PKCS#1 or
    /// SEC1).
    #[arg(long, env = "NTA_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// File of notification variables (NTA_SMTP_*, TWILIO_*,
    /// NTA_WEBHOOK_URL; see .env.example); variables already set in the
    /// environment win over it. A missing file is fine.
    #[arg(long, default_value = ".env")]
    pub env_file: PathBuf,

    /// Block the sources of new volumetric, port-scan and signature
    /// incidents in XDP for a while ([mitigate] in the config).
    #[arg(long)]
    pub mitigate: bool,

    /// Say what automatic mitigation would block, without blocking.
    #[arg(long)]
    pub dry_run: bool,

    /// Write Suricata's EVE JSON to this file (appended to, created if
    /// missing), or to stdout with `-`: an alert event per rule match and
    /// per incident of the other detectors as it opens, and stats events.
    #[arg(long, value_name = "PATH", env = "NTA_EVE")]
    pub eve: Option<crate::eve::EveTarget>,

    /// Also send every flow record to this IPFIX collector over UDP
    /// (IP:PORT, e.g. nfcapd's); wins over `[export] ipfix` in the config.
    /// Never waits: what the socket cannot take at once is dropped and
    /// counted.
    #[arg(long, value_name = "IP:PORT", env = "NTA_IPFIX", value_parser = crate::config::collector)]
    pub ipfix: Option<SocketAddr>,

    /// How often a stats event goes to the EVE output (Suricata's default).
    #[arg(long, default_value = "8s", value_parser = parse_interval)]
    pub eve_stats_interval: Duration,
}

/// `--xdp-mode`, as clap reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    Auto,
    Native,
    Skb,
}

impl From<XdpModeArg> for XdpMode {
    fn from(arg: XdpModeArg) -> Self {
        match arg {
            XdpModeArg::Auto => XdpMode::Auto,
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Skb => XdpMode::Skb,
        }
    }
}

/// Shortest accepted interval: below it, reading 65 536 sources each tick
/// would cost more than it tells.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 1s or 500ms: {e}"))?;
    if interval < MIN_INTERVAL {
        return Err(format!(
            "`{text}` is too short: the interval must be at least {}",
            humantime::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_accepts_human_durations() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn interval_rejects_garbage_and_too_short_values_naming_them() {
        let err = parse_interval("soon").unwrap_err();
        assert!(err.contains("`soon`"), "{err}");
        let err = parse_interval("1ms").unwrap_err();
        assert!(err.contains("too short"), "{err}");
    }

    #[test]
    fn ipfix_takes_an_address_and_port_and_names_a_bad_one() {
        let cli =
            Cli::try_parse_from(["nta-agent", "read", "--ipfix", "[::1]:4739", "x.pcap"]).unwrap();
        let Command::Read(args) = cli.command else {
            panic!("not read: {cli:?}");
        };
        assert_eq!(args.ipfix, Some("[::1]:4739".parse().unwrap()));
        let err =
            Cli::try_parse_from(["nta-agent", "run", "-i", "lo", "--ipfix", "collector:4739"])
                .unwrap_err()
                .to_string();
        assert!(
            err.contains(r#"invalid IPFIX collector "collector:4739""#),
            "{err}"
        );
    }

    #[test]
    fn tls_takes_a_certificate_and_a_key_or_neither() {
        let cli = Cli::try_parse_from([
            "nta-agent",
            "run",
            "-i",
            "lo",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run: {cli:?}");
        };
        assert_eq!(args.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(args.tls_key, Some(PathBuf::from("key.pem")));
        for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
            let err = Cli::try_parse_from(["nta-agent", "run", "-i", "lo", given, "x.pem"])
                .unwrap_err()
                .to_string();
            assert!(err.contains(missing), "{given} alone: {err}");
        }
    }

    #[test]
    fn run_requires_an_interface() {
        let err = Cli::try_parse_from(["nta-agent", "run"]).unwrap_err();
        assert!(err.to_string().contains("--iface"), "{err}");
    }
}
