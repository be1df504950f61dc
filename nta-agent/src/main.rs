use std::io::IsTerminal as _;

use clap::Parser as _;
use nta_agent::cli::{Cli, Command, ConfigCommand, GenerateCommand, NotifyCommand, RulesCommand};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tune_malloc();
    // The runtime #[tokio::main] would build, built after the tuning: its
    // threads take their malloc arenas as they start.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// Sets glibc's malloc up for an agent that lives for months.
fn tune_malloc() {
    // Keep large buffers (each tick's snapshot of up to 65 536 sources) in
    // their own mappings, returned to the system when freed: glibc would
    // otherwise raise this threshold after the first free and keep them on
    // the heap, where the memory stays resident.
    // SAFETY: mallopt only changes allocator tuning; called before any
    // thread is started.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    // One malloc arena a CPU rather than glibc's eight: the snapshots, the
    // flow table's walks and the store's writes run on the runtime's
    // blocking threads, and each thread's arena kept what they freed.
    // Under a 10-million-source spoofed flood, whose flows reach the store
    // as records, the agent peaked at 90–102 MiB resident for a 49 MiB
    // heap, 72–79 MiB with this (BENCHMARKS.md). MALLOC_ARENA_MAX, if set,
    // wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cpus).unwrap_or(i32::MAX);
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    match cli.command {
        Command::Run(args) => nta_agent::run::run(args).await,
        Command::Read(args) => {
            let status = nta_agent::read::read(&args)?;
            if status != 0 {
                // The message is printed; the status says the rest.
                std::process::exit(status.into());
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let summary = nta_agent::config::check(&file)?;
            println!("{summary}");
            Ok(())
        }
        Command::Block(command) => nta_agent::mitigate::client::run(&command).await,
        Command::Notify(NotifyCommand::Test(args)) => {
            let ok = nta_agent::notify::cli::test(&args).await?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Generate(command) => {
            let written = match command {
                GenerateCommand::Man { dir } => nta_agent::generate::man_pages(&dir)?,
                GenerateCommand::Completions { dir } => nta_agent::generate::completions(&dir)?,
            };
            for path in written {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Rules(RulesCommand::Check { files, config }) => {
            let vars = match config {
                Some(path) => nta_agent::config::Config::load(&path)?.rule_vars(),
                None => nta_agent::payload::rules::Vars::default(),
            };
            let (summary, errors) = nta_agent::payload::rules::check(&files, &vars)?;
            for error in &errors {
                eprintln!("{error}");
            }
            print!("{summary}");
            if !errors.is_empty() {
                // The errors are the report: no "Error:" chain or backtrace.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
