//! The webhook: the event as JSON, POSTed to each URL (certificates
//! verified), with a time limit, bounded retries, and an optional
//! `X-Understudy-Signature: sha256=HEX` header, HMAC-SHA256 of the body with
//! the shared secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{with_retries, Envelope};
use crate::config::{Url, Webhook};

#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    urls: Vec<Url>,
    retries: u32,
    secret: Option<Vec<u8>>,
}

pub const SIGNATURE_HEADER: &str = "x-understudy-signature";

/// `sha256=HEX` of the body under the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Poster {
    pub fn new(c: &Webhook) -> Result<Poster, String> {
        let client = reqwest::Client::builder()
            .timeout(c.timeout)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let secret = match &c.secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("webhook secret file {}: {e}", path.display()))?
                    .trim()
                    .as_bytes()
                    .to_vec(),
            ),
            None => None,
        };
        Ok(Poster {
            client,
            urls: c.urls.clone(),
            retries: c.retries,
            secret,
        })
    }

    pub async fn send(&self, e: &Envelope) -> Result<(), String> {
        let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
        let mut failures = Vec::new();
        for url in &self.urls {
            let outcome = with_retries(self.retries, || async {
                let mut request = self
                    .client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(secret) = &self.secret {
                    request = request.header(SIGNATURE_HEADER, signature(secret, &body));
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP status {}", response.status()))
                }
            })
            .await;
            if let Err(why) = outcome {
                failures.push(format!("{url}: {why}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}
