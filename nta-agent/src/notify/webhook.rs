//! A JSON webhook: one POST per message, with a Slack-compatible `text`
//! field (Slack and Mattermost show it and ignore the rest) beside the
//! message's parts and the alert itself, for receivers that want structure.
//! Also the HTTP plumbing it shares with [`super::sms`].

use reqwest::{Client, Response, StatusCode, Url};
use serde_json::json;

use super::{
    channel::{Deliver, Delivered, SendError},
    error::{ChannelError, caused_by_tls, chain},
    message::Message,
    settings::WebhookSettings,
};
use crate::http_client;

/// Most bytes of an error answer read to explain a failure: enough for
/// Twilio's or Slack's error JSON, and a server cannot make us buffer more.
const ERROR_BODY_MAX: usize = 4096;

/// Most characters of a server's error text quoted in an error: one log line.
const ERROR_TEXT_MAX: usize = 200;

/// Sends notifications to a webhook.
pub struct Webhook {
    client: Client,
    url: Url,
}

impl Webhook {
    /// Checks `settings` and builds the HTTP client; nothing is sent until
    /// [`Deliver::send`].
    pub fn new(settings: &WebhookSettings) -> Result<Self, ChannelError> {
        let url = http_url("NTA_WEBHOOK_URL", &settings.url)?;
        Ok(Webhook {
            client: http_client::build("webhook", settings.timeout)?,
            url,
        })
    }
}

impl Deliver for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    /// Scheme, host and port only: the path of a Slack or Mattermost
    /// webhook URL is its secret.
    fn describe(&self) -> String {
        format!("POST JSON to {}/…", origin(&self.url))
    }

    async fn send(&self, message: &Message, _: &mut Delivered) -> Result<(), SendError> {
        let payload = json!({
            "text": format!("{}\n{}", message.subject, message.body),
            "subject": message.subject,
            "body": message.body,
            "purpose": message.purpose,
            "severity": message.severity,
            "sensor": message.sensor,
            "url": message.url,
            "alert": message.alert,
        });
        let response = self
            .client
            .post(self.url.clone())
            .json(&payload)
            .send()
            .await
            .map_err(|e| request_error("webhook", e))?;
        check_answer("webhook", response).await
    }
}

/// `value` as an http or https URL with a host, or an error naming `var`.
pub(crate) fn http_url(var: &'static str, value: &str) -> Result<Url, ChannelError> {
    let bad = |reason: String| ChannelError::BadUrl {
        var,
        value: value.to_owned(),
        reason,
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL".to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".to_owned()));
    }
    Ok(url)
}

/// `scheme://host[:port]` of `url`.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A request that got no answer, from `peer` (`Twilio`, `webhook`).
pub(crate) fn request_error(peer: &str, error: reqwest::Error) -> SendError {
    let tls = caused_by_tls(&error);
    // The URL may carry a webhook's secret: never part of the text.
    let error = error.without_url();
    let mut text = format!("{peer}: {}", chain(&error));
    if tls {
        text.push_str(" (is the server's certificate trusted by this system?)");
    }
    if tls || error.is_builder() {
        SendError::Permanent(text)
    } else {
        // Refused, reset, timed out, cut off: may well work in a moment.
        SendError::Transient(text)
    }
}

/// Ok for a 2xx answer; otherwise an error with the status and the
/// server's own explanation (Twilio's JSON `message`, Slack's text).
/// 408, 429 and 5xx are worth a retry; other statuses are not.
pub(crate) async fn check_answer(peer: &str, response: Response) -> Result<(), SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let detail = explanation(&error_body(response).await);
    let text = if detail.is_empty() {
        format!("{peer} answered {}", status.as_u16())
    } else {
        format!("{peer} answered {}: {detail}", status.as_u16())
    };
    if is_transient(status) {
        Err(SendError::Transient(text))
    } else if status.is_redirection() {
        Err(SendError::Permanent(format!(
            "{text} (redirects are not followed: use the URL it points to)"
        )))
    } else {
        Err(SendError::Permanent(text))
    }
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// The first [`ERROR_BODY_MAX`] bytes of an answer's body; what could not
/// be read is simply missing (the status says enough).
async fn error_body(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_MAX);
    body
}

/// What an error body says: the `message` field of a JSON object (Twilio),
/// else the text itself; one line of at most [`ERROR_TEXT_MAX`] characters,
/// control characters dropped (it is the server's text, bound for logs).
fn explanation(body: &[u8]) -> String {
    let json_message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_owned));
    let text = json_message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut line = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(ERROR_TEXT_MAX + 1)
        .collect::<String>();
    if line.chars().count() > ERROR_TEXT_MAX {
        line = line.chars().take(ERROR_TEXT_MAX).collect::<String>() + "…";
    }
    line
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::error::refusal;

    fn settings(url: &str) -> WebhookSettings {
        WebhookSettings {
            url: url.into(),
            timeout: Duration::from_secs(5),
        }
    }

    fn error(url: &str) -> String {
        refusal(Webhook::new(&settings(url)))
    }

    #[test]
    fn describes_the_origin_only_since_the_path_is_a_secret() {
        let webhook =
            Webhook::new(&settings("https://hooks.example.com/services/T0/B0/s3cr3t")).unwrap();
        assert_eq!(
            webhook.describe(),
            "POST JSON to https://hooks.example.com/…"
        );
        assert_eq!(webhook.name(), "webhook");
        let webhook = Webhook::new(&settings("http://127.0.0.1:8065/hooks/abc")).unwrap();
        assert_eq!(webhook.describe(), "POST JSON to http://127.0.0.1:8065/…");
    }

    #[test]
    fn rejects_urls_that_are_not_http_naming_the_variable() {
        assert_eq!(
            error("ftp://x"),
            "NTA_WEBHOOK_URL: `ftp://x` must be an http or https URL"
        );
        assert!(
            error("hooks.example.com/x")
                .starts_with("NTA_WEBHOOK_URL: `hooks.example.com/x` is not a URL: "),
            "{}",
            error("hooks.example.com/x")
        );
        assert!(error("").starts_with("NTA_WEBHOOK_URL: `` is not a URL"));
    }

    #[test]
    fn statuses_worth_a_retry_are_5xx_429_and_408() {
        for code in [500, 502, 503, 429, 408] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 301] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn explains_with_twilios_message_or_the_text_on_one_line() {
        let twilio = br#"{"code": 20003, "message": "Authenticate", "status": 401}"#;
        assert_eq!(explanation(twilio), "Authenticate");
        assert_eq!(explanation(b"invalid_payload\n"), "invalid_payload");
        assert_eq!(
            explanation(b"line one\r\nline\x07 two"),
            "line one line two"
        );
        assert_eq!(explanation(b""), "");
        let long = "x".repeat(1000);
        let explained = explanation(long.as_bytes());
        assert_eq!(explained.chars().count(), ERROR_TEXT_MAX + 1);
        assert!(explained.ends_with('…'));
    }
}
