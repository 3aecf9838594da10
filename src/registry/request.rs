//! Requests of any method, with a body, for a push: [`Registry::request`]
//! sends a [`Call`] with the authorization (to the registry's own host
//! only: an upload location elsewhere gets none) and, on a 401, learns the
//! challenge, renews the token and sends it once more with a fresh body
//! from its [`BodyMaker`] (a streamed body cannot be sent twice). A
//! `Call` may need a scope beyond the client's own (a mount's source).
//!
//! This module sends and returns the answer whatever its status; reading
//! it is `session.rs`'s. GETs and HEADs follow redirects as the pull's
//! do; other methods are sent once, where they are told.

use std::io::Read;
use std::time::{Duration, Instant};

use ureq::http::Response;
use ureq::Body;

use crate::error::{redact_url, Result};
use crate::registry::client::Registry;
use crate::registry::http_error::{drain, network_error_of};
use crate::registry::transport::Payload;

/// A request with a body to send again after a 401: a maker of it.
pub type BodyMaker<'m> = dyn FnMut() -> Result<Sending<'m>> + 'm;

/// The body of one request, as a [`BodyMaker`] makes it.
pub enum Sending<'a> {
    /// None.
    Nothing,
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many bytes from a reader.
    Reader(Box<dyn Read + Send + 'a>, u64),
}

/// One request of a push (see [`Registry::request`]).
pub struct Call<'a> {
    /// `HEAD`, `POST`, `PUT`, `PATCH`, `GET` or `DELETE`.
    pub method: &'static str,
    /// Where to (the registry's own host gets the authorization; an upload
    /// location elsewhere does not).
    pub url: &'a str,
    /// What is being done, for messages.
    pub what: &'a str,
    /// Request headers.
    pub headers: Vec<(&'static str, String)>,
    /// A scope the request needs beyond the client's (a mount's source).
    pub extra_scope: Option<String>,
    /// Wait this long for the answer once the body is sent.
    pub answer_within: Option<Duration>,
}

impl Registry {
    /// Sends `call` with the body `body` makes, carrying the current
    /// authorization when it goes to the registry's own host; on a 401
    /// learns the new challenge, renews the authorization and sends it
    /// once more, with a fresh body.
    pub fn request(&self, call: &Call, body: &mut BodyMaker) -> Result<Response<Body>> {
        let (endpoint, auth) = self.parts();
        let own = call.url.starts_with(&format!("{}/", endpoint.base));
        let mut resp = self.send_call(call, body, own)?;
        if own && resp.status().as_u16() == 401 {
            log::debug!("401 from {}: renewing authorization", redact_url(call.url));
            auth.learn_challenge(&resp)?;
            drain(&mut resp);
            auth.forget_tokens();
            resp = self.send_call(call, body, own)?;
        }
        Ok(resp)
    }

    fn send_call(&self, call: &Call, body: &mut BodyMaker, own: bool) -> Result<Response<Body>> {
        let (endpoint, auth) = self.parts();
        let mut headers: Vec<(&str, String)> = call.headers.clone();
        if own {
            let extra = call.extra_scope.as_deref();
            if let Some(a) = auth.authorization(endpoint, extra)? {
                headers.push(("Authorization", a));
            }
        }
        let mut sending = body()?;
        let payload = match &mut sending {
            Sending::Nothing => Payload::Empty,
            Sending::Bytes(b) => Payload::Bytes(b),
            Sending::Reader(r, len) => Payload::Stream(r.as_mut(), *len),
        };
        let started = Instant::now();
        let sent = match call.method {
            "GET" | "HEAD" => endpoint.fetch(call.method, call.url, headers),
            m => endpoint.send(m, call.url, &headers, payload, call.answer_within),
        };
        let resp = sent.map_err(|e| network_error_of(call.method, call.what, call.url, e))?;
        log::debug!(
            "{} {} -> {} ({} ms)",
            call.method,
            redact_url(call.url),
            resp.status().as_u16(),
            started.elapsed().as_millis()
        );
        Ok(resp)
    }
}
