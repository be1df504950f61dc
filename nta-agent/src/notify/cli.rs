//! `nta-agent notify test`: one test message through every configured
//! channel, each result on its own line.

use anyhow::Context as _;

use super::{env::Environment, settings::resolve};
use crate::{cli::NotifyArgs, config::Config};

/// Prints each channel's result; `false` if any failed or none is
/// configured.
pub async fn test(args: &NotifyArgs) -> anyhow::Result<bool> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let env = Environment::load(&args.env_file)?;
    let api = format!("http://{}", args.listen);
    let settings = resolve(&config.notify, &env, &api, config.sensor_name())
        .context("reading the notification settings")?;
    if !settings.any() {
        eprintln!(
            "no notification channel is configured: set NTA_SMTP_HOST, TWILIO_SID or \
             NTA_WEBHOOK_URL in the environment or in {} (see .env.example), or [notify] in \
             the config file",
            args.env_file.display()
        );
        return Ok(false);
    }
    let results = super::test(&settings).await;
    let mut ok = true;
    for result in &results {
        match &result.outcome {
            Ok(took) => println!(
                "{}: ok — {}, {} ms",
                result.channel,
                result.target,
                took.as_millis()
            ),
            Err(error) => {
                ok = false;
                // Channel errors may start with the channel's name already.
                let error = error
                    .strip_prefix(&format!("{}: ", result.channel))
                    .unwrap_or(error);
                println!("{}: FAILED — {}: {error}", result.channel, result.target);
            }
        }
    }
    Ok(ok)
}
