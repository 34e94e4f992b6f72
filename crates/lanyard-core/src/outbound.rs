//! Calls Lanyard makes to addresses others registered (an app's `backchannel_logout_uri`):
//! never to this machine, the link-local network (cloud metadata at 169.254.169.254) or a
//! private network, unless the operator allows the range (`outbound_allow`,
//! `LANYARD_OUTBOUND_ALLOW`). Otherwise whoever may register an app could make Lanyard probe
//! or poke the inside of the company's network (server-side request forgery).
//!
//! The check is made on the addresses a name resolves to, at the moment of the call (the
//! HTTP client resolves through [`Guarded`]), so a name that resolves to a public address
//! when registered and to a private one later (DNS rebinding) is refused too. Redirects are
//! never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::Network;

/// The setting that allows internal addresses; every refusal names it.
pub const SETTING: &str = "outbound_allow";

/// This machine's addresses (`127.0.0.0/8`, `::1`): what the playground and the tests allow,
/// since their apps listen here.
pub fn loopback() -> Vec<Network> {
    vec![
        Network::from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
        Network::from(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    ]
}

/// Whether Lanyard may call `ip`: a public address, or one in `allow`.
pub fn allowed(ip: IpAddr, allow: &[Network]) -> bool {
    allow.iter().any(|n| n.contains(ip)) || !internal(ip)
}

/// This machine, link-local, private, shared (carrier-grade NAT), unspecified, multicast or
/// broadcast: nothing an app on the internet or the company's public side answers at.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, shared address space
        || a == 0
}

/// The IPv4 address an IPv6 one reaches through a translator or tunnel, which is what must be
/// judged: IPv4-mapped and IPv4-compatible (`::ffff:a.b.c.d`, `::a.b.c.d`), NAT64's
/// well-known prefix (`64:ff9b::/96`, RFC 6052), 6to4 (`2002::/16`, RFC 3056) and Teredo's
/// client (`2001::/32`, RFC 4380: the last 32 bits, inverted).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_loopback() || ip.is_unspecified() {
        return None;
    }
    if let Some(v4) = ip.to_ipv4() {
        return Some(v4); // ::ffff:a.b.c.d and ::a.b.c.d
    }
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        [0x2001, 0, .., hi, lo] => Some(v4(!hi, !lo)),
        _ => None,
    }
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || (first & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated, still routed inside)
        || (first == 0x64 && second == 0xff9b) // 64:ff9b::/16 beyond /96: NAT64 for local use (RFC 8215)
}

/// Reads `response`'s body up to `limit` bytes: `Ok(None)` when it is longer (what a server
/// sends never fills Lanyard's memory).
pub async fn read_limited(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(body))
}

/// Why a call to `url` may not be made before any name is resolved: a host written as an
/// address that is not allowed. `None`: go ahead (names are checked as they resolve).
pub fn refuse_literal(url: &str, allow: &[Network]) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let ip = match url.host()? {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(_) => return None,
    };
    (!allowed(ip, allow)).then(|| not_allowed(ip))
}

fn not_allowed(ip: IpAddr) -> String {
    format!(
        "{ip} is a loopback, link-local or private address, which Lanyard does not call unless \
         {SETTING} (LANYARD_OUTBOUND_ALLOW) names it"
    )
}

/// A resolver that drops the addresses Lanyard may not call, and fails if none is left.
struct Guarded {
    allow: Vec<Network>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed(a.ip(), &allow))
                .collect();
            match (kept.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(kept.into_iter()) as Addrs),
                (true, Some(first)) => Err(format!("{host}: {}", not_allowed(first.ip())).into()),
                (true, None) => Err(format!("{host} resolves to no address").into()),
            }
        })
    }
}

/// An HTTP client for calls to registered addresses: resolving through the guard, following
/// no redirect, keeping no cookie.
pub fn client(allow: &[Network], user_agent: &str, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Never through a proxy from the environment: the proxy would resolve the name, and
        // the guard below would never see the address.
        .no_proxy()
        .dns_resolver(Arc::new(Guarded {
            allow: allow.to_vec(),
        }))
        .user_agent(user_agent)
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}

/// Why a call failed, for the audit trail and the logs: without the URL (it may carry
/// credentials of the receiver's), with every cause (the resolver's refusal is one).
pub fn describe(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    let e = e.without_url();
    let mut why = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        why.push_str(": ");
        why.push_str(&c.to_string());
        cause = c.source();
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "fec0::1",
        ] {
            assert!(!allowed(ip(refused), &[]), "{refused}");
        }
        for public in [
            "192.0.2.1",
            "8.8.8.8",
            "100.128.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(allowed(ip(public), &[]), "{public}");
        }
        let allow = loopback();
        assert_eq!(
            allow,
            ["127.0.0.0/8", "::1"].map(|n| n.parse::<Network>().unwrap())
        );
        assert!(allowed(ip("127.0.0.5"), &allow));
        assert!(allowed(ip("::1"), &allow));
        assert!(!allowed(ip("10.0.0.1"), &allow), "only what is named");
    }

    #[test]
    fn literal_addresses_are_refused_before_any_call() {
        assert!(refuse_literal("http://169.254.169.254/latest/meta-data", &[]).is_some());
        assert!(refuse_literal("http://[::1]:8080/logout", &[]).is_some());
        assert!(refuse_literal("https://app.example.com/logout", &[]).is_none());
        assert!(refuse_literal("https://192.0.2.10/logout", &[]).is_none());
    }

    #[tokio::test]
    async fn names_are_checked_as_they_resolve() {
        let http = client(&[], "test", Duration::from_secs(5));
        let err = http
            .post("http://localhost:9/logout")
            .send()
            .await
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains(SETTING), "{text}");
    }
}
