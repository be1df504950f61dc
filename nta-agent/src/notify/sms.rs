//! SMS through Twilio's Messages API: one form POST per recipient, with the
//! message's short text, authenticated with the account SID and token.

use reqwest::{Client, Url};

use super::{
    channel::{Deliver, Delivered, SendError},
    error::{ChannelError, recipients, required},
    message::Message,
    settings::{Secret, SmsSettings},
    webhook::{check_answer, http_url, origin, request_error},
};
use crate::http_client;

/// Sends notifications as text messages.
pub struct Sms {
    client: Client,
    /// `{api_base}/2010-04-01/Accounts/{sid}/Messages.json`.
    endpoint: Url,
    sid: String,
    token: Secret,
    from: String,
    to: Vec<String>,
}

impl Sms {
    /// Checks `settings` and builds the HTTP client; nothing is sent until
    /// [`Deliver::send`].
    pub fn new(settings: &SmsSettings) -> Result<Self, ChannelError> {
        let sid = required("TWILIO_SID", settings.sid.trim())?;
        // The SID goes into the URL's path: only what an SID is made of
        // (`AC` and hex digits) can go there unescaped.
        if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ChannelError::BadValue {
                var: "TWILIO_SID",
                value: sid.to_owned(),
                reason: "is not an account SID (letters and digits, `AC...`)",
            });
        }
        required("TWILIO_TOKEN", settings.token.expose())?;
        let from = phone("TWILIO_PHONE", &settings.from)?;
        let to = recipients("ALERT_PHONE", "phone number", &settings.to, phone)?;

        let base = http_url("TWILIO_API_BASE", &settings.api_base)?;
        let endpoint = format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            base.as_str().trim_end_matches('/')
        );
        let endpoint = http_url("TWILIO_API_BASE", &endpoint)?;
        Ok(Sms {
            client: http_client::build("sms", settings.timeout)?,
            endpoint,
            sid: sid.to_owned(),
            token: settings.token.clone(),
            from,
            to,
        })
    }

    /// One message to `to`.
    async fn send_to(&self, to: &str, message: &Message) -> Result<(), SendError> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.sid, Some(self.token.expose()))
            .form(&[
                ("To", to),
                ("From", self.from.as_str()),
                ("Body", message.short.as_str()),
            ])
            .send()
            .await
            .map_err(|e| request_error("Twilio", e))?;
        check_answer("Twilio", response).await
    }
}

impl Deliver for Sms {
    fn name(&self) -> &'static str {
        "sms"
    }

    fn describe(&self) -> String {
        format!(
            "{} from {} via Twilio at {}",
            self.to.join(", "),
            self.from,
            origin(&self.endpoint)
        )
    }

    /// Every recipient not yet reached at once, so that the attempt takes
    /// one timeout, not one per number, and a bad number does not keep the
    /// others waiting. Any failure fails the attempt: transient if any was,
    /// so that the notifier retries — the numbers that failed only —
    /// otherwise permanent.
    async fn send(&self, message: &Message, delivered: &mut Delivered) -> Result<(), SendError> {
        let pending: Vec<(usize, &String)> = self
            .to
            .iter()
            .enumerate()
            .filter(|(i, _)| !delivered.has(*i))
            .collect();
        let outcomes =
            futures_util::future::join_all(pending.iter().map(|(_, to)| self.send_to(to, message)))
                .await;
        let mut failures = Vec::new();
        let mut transient = false;
        for ((i, to), outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.mark(i),
                Err(SendError::Transient(text)) => {
                    transient = true;
                    failures.push(format!("{to}: {text}"));
                }
                Err(SendError::Permanent(text)) => failures.push(format!("{to}: {text}")),
            }
        }
        match (failures.is_empty(), transient) {
            (true, _) => Ok(()),
            (false, true) => Err(SendError::Transient(failures.join("; "))),
            (false, false) => Err(SendError::Permanent(failures.join("; "))),
        }
    }
}

/// `number` if it is E.164 (`+` then 8 to 15 digits), else an error naming
/// `var`.
fn phone(var: &'static str, number: &str) -> Result<String, ChannelError> {
    let number = number.trim();
    let digits = number.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(number.to_owned())
    } else {
        Err(ChannelError::BadPhone {
            var,
            value: number.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::error::refusal;

    fn settings() -> SmsSettings {
        SmsSettings {
            sid: "AC0123456789abcdef0123456789abcdef".into(),
            token: Secret::new("tok-secret"),
            from: "+15550000001".into(),
            to: vec!["+15550000002".into(), "+447700900003".into()],
            api_base: "https://api.twilio.com".into(),
            timeout: Duration::from_secs(10),
        }
    }

    fn error(settings: &SmsSettings) -> String {
        refusal(Sms::new(settings))
    }

    #[test]
    fn posts_to_the_accounts_messages_endpoint() {
        let sms = Sms::new(&settings()).unwrap();
        assert_eq!(
            sms.endpoint.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        let proxied = Sms::new(&SmsSettings {
            api_base: "http://127.0.0.1:8080/twilio/".into(),
            ..settings()
        })
        .unwrap();
        assert_eq!(
            proxied.endpoint.as_str(),
            "http://127.0.0.1:8080/twilio/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
    }

    #[test]
    fn describes_numbers_and_api_but_never_the_token() {
        let sms = Sms::new(&settings()).unwrap();
        assert_eq!(
            sms.describe(),
            "+15550000002, +447700900003 from +15550000001 via Twilio at https://api.twilio.com"
        );
        assert!(!sms.describe().contains("tok-secret"));
        assert_eq!(sms.name(), "sms");
    }

    #[test]
    fn rejects_numbers_that_are_not_e164_naming_the_variable() {
        assert_eq!(
            error(&SmsSettings {
                to: vec!["+15550000002".into(), "5550000003".into()],
                ..settings()
            }),
            "ALERT_PHONE: `5550000003` is not a phone number in E.164 form (`+` then 8 to 15 digits)"
        );
        assert!(
            error(&SmsSettings {
                from: "+1 555 000".into(),
                ..settings()
            })
            .starts_with("TWILIO_PHONE: `+1 555 000`")
        );
        for bad in ["+1234567", "+1234567890123456", "+", "+12345678a"] {
            assert!(phone("ALERT_PHONE", bad).is_err(), "{bad}");
        }
        for good in ["+12345678", "+123456789012345"] {
            assert_eq!(phone("ALERT_PHONE", good).unwrap(), good);
        }
        assert_eq!(
            error(&SmsSettings {
                to: vec![],
                ..settings()
            }),
            "ALERT_PHONE: no phone number given (at least one is needed)"
        );
    }

    #[test]
    fn rejects_bad_sid_token_and_api_base_naming_the_variable() {
        assert_eq!(
            error(&SmsSettings {
                sid: "".into(),
                ..settings()
            }),
            "TWILIO_SID is empty"
        );
        assert!(
            error(&SmsSettings {
                sid: "AC../../x".into(),
                ..settings()
            })
            .starts_with("TWILIO_SID: `AC../../x` is not an account SID")
        );
        assert_eq!(
            error(&SmsSettings {
                token: Secret::new(""),
                ..settings()
            }),
            "TWILIO_TOKEN is empty"
        );
        assert_eq!(
            error(&SmsSettings {
                api_base: "ftp://api.twilio.com".into(),
                ..settings()
            }),
            "TWILIO_API_BASE: `ftp://api.twilio.com` must be an http or https URL"
        );
    }
}
