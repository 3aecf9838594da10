//! The one way every request of a registry client goes, pull, push or
//! inspect, in two layers.
//!
//! [`Registry::send`] sends one [`Call`] of any method: with the current
//! authorization when it goes to the registry's own host (an upload
//! location or a redirect elsewhere gets none), through the transport's
//! one [`Endpoint::exchange`](crate::registry::transport::Endpoint::exchange)
//! (redirects, the request log); on a 401 it learns the challenge, renews
//! the token and sends the call once more, with a fresh body from its
//! [`BodyMaker`] (a streamed body cannot be sent twice). The answer tells
//! the host's budget how the request went.
//!
//! [`Registry::run`] runs attempts of a request under the host's budget
//! and the retry policy: a permit for each attempt ([`How::Retried`],
//! [`How::Once`]), or the caller's permit held across attempts
//! ([`How::Held`], a blob segment). A 429 is not a failed attempt: the
//! budget shrinks, and the request waits for it (or, on a held permit, is
//! handed back to its caller), until the host has refused everything for
//! the policy's patience. Other failures are retried by the policy, once
//! only on a host of a mirror list that has a next host to ask.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

use crate::error::{redact_url, Error, Result};
use crate::registry::client::Registry;
use crate::registry::http_error::{drain, http_error_of, network_error_of};
use crate::registry::permits::Permit;
use crate::registry::retry;
use crate::registry::transport::{Outgoing, Payload};

/// A request with a body to send again after a 401: a maker of it.
pub type BodyMaker<'m> = dyn FnMut() -> Result<Sending<'m>> + 'm;

/// The body of one request, as a [`BodyMaker`] makes it.
pub enum Sending<'a> {
    /// None.
    Nothing,
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many bytes from a reader.
    Reader(Box<dyn std::io::Read + Send + 'a>, u64),
}

/// One request (see [`Registry::send`]).
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
    /// Whether a 401 renews the authorization and sends the call again
    /// (all but the ping, whose 401 is the challenge it asks for).
    pub renew: bool,
}

impl<'a> Call<'a> {
    /// `method` `url`, for `what`, with no header of its own.
    pub fn new(method: &'static str, url: &'a str, what: &'a str) -> Call<'a> {
        Call {
            method,
            url,
            what,
            headers: Vec::new(),
            extra_scope: None,
            answer_within: None,
            renew: true,
        }
    }
}

/// How the attempts of a request take leave from the host's budget.
#[derive(Clone, Copy)]
pub enum How<'p> {
    /// A permit for each attempt; failures retried by the policy.
    Retried,
    /// A permit for each attempt; one attempt, whatever follows a failure
    /// being the caller's (an upload's steps); refusals still waited out.
    Once,
    /// The caller's permit, held across the attempts, which end early on
    /// `abort`; a refusal hands the request back (`Ok(None)`).
    Held(&'p Permit, &'p AtomicBool),
}

impl Registry {
    /// Sends `call` once with the body `body` makes, carrying the current
    /// authorization when it goes to the registry's own host; on a 401
    /// learns the new challenge, renews the authorization and sends it
    /// once more, with a fresh body. Tells `permit` how the host answered;
    /// a 429 is an error, for [`Registry::run`] to wait out.
    pub fn send(
        &self,
        call: &Call,
        permit: &Permit,
        body: &mut BodyMaker,
    ) -> Result<Response<Body>> {
        let own = call.url.starts_with(&format!("{}/", self.endpoint.base));
        let mut resp = self.send_once(call, body, own)?;
        if own && call.renew && resp.status().as_u16() == 401 {
            log::debug!("401 from {}: renewing authorization", redact_url(call.url));
            self.auth.learn_challenge(&resp)?;
            drain(&mut resp);
            self.auth.forget_tokens();
            resp = self.send_once(call, body, own)?;
        }
        match resp.status().as_u16() {
            429 => Err(http_error_of(
                call.method,
                call.what,
                call.url,
                429,
                &mut resp,
            )),
            status => {
                permit.answered(status);
                Ok(resp)
            }
        }
    }

    fn send_once(&self, call: &Call, body: &mut BodyMaker, own: bool) -> Result<Response<Body>> {
        let mut headers: Vec<(&str, String)> = call.headers.clone();
        if own {
            let extra = call.extra_scope.as_deref();
            if let Some(a) = self.auth.authorization(&self.endpoint, extra)? {
                headers.push(("Authorization", a));
            }
        }
        let mut sending = body()?;
        let mut req = Outgoing::new(call.method, call.url, headers);
        req.answer_within = call.answer_within;
        req.body = match &mut sending {
            Sending::Nothing => Payload::Empty,
            Sending::Bytes(b) => Payload::Bytes(b),
            Sending::Reader(r, len) => Payload::Stream(r.as_mut(), *len),
        };
        let (method, what, url) = (call.method, call.what, call.url);
        self.endpoint
            .exchange(req)
            .map_err(|e| network_error_of(method, what, url, e))
    }

    /// Runs `attempt` (given the permit it goes under) as `how` says,
    /// until it succeeds, fails for good, or the policy gives up; after a
    /// retryable failure, `progressed` says whether the attempt brought
    /// anything (which resets the count of failures in a row). `Ok(None)`
    /// only for a held permit the host refused.
    pub fn run<T>(
        &self,
        what: &str,
        how: How,
        progressed: impl FnMut() -> bool,
        mut attempt: impl FnMut(&Permit) -> Result<T>,
    ) -> Result<Option<T>> {
        let once = self.policy.once();
        let retried = matches!(how, How::Retried | How::Held(..)) && !self.once();
        let policy = if retried { &self.policy } else { &once };
        let patience = self.policy.refusal_patience();
        let held = match how {
            How::Held(permit, abort) => Some((permit, abort)),
            _ => None,
        };
        let mut first = true;
        let abort = held.map(|h| h.1);
        retry::run(policy, what, abort, Error::is_retryable, progressed, || {
            loop {
                let mine;
                let permit = match held {
                    Some((permit, abort)) => {
                        if !std::mem::take(&mut first) {
                            permit.again(Some(abort))?;
                        }
                        permit
                    }
                    None => {
                        mine = self.budget().acquire(None)?;
                        &mine
                    }
                };
                match attempt(permit) {
                    Err(e @ Error::Http { status: 429, .. }) => {
                        if let Err(hint) = permit.refused(e.retry_after(), patience) {
                            // Refused for too long: the 429, with what was seen.
                            let error = Box::new(e);
                            return Err(Error::Hinted { error, hint });
                        }
                        if held.is_some() {
                            return Ok(None);
                        }
                    }
                    r => {
                        permit.settle();
                        return r.map(Some);
                    }
                }
            }
        })
    }

    /// [`Registry::run`] with a permit for each attempt: retried by the
    /// policy when `retried`, else tried once.
    pub fn request<T>(
        &self,
        what: &str,
        retried: bool,
        attempt: impl FnMut(&Permit) -> Result<T>,
    ) -> Result<T> {
        let how = if retried { How::Retried } else { How::Once };
        self.run(what, how, || false, attempt)?
            .ok_or(Error::Aborted)
    }
}
