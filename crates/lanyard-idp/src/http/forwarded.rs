//! Where a request comes from. Behind a reverse proxy every connection is the proxy's, so
//! the client's address is in `Forwarded` (RFC 7239) or `X-Forwarded-For`; but anyone can
//! send those headers. They are read only when the TCP peer is a proxy the operator trusts
//! (`trusted_proxies`), and then only as far as trusted proxies vouch: walking from the
//! right (the hop nearest to Lanyard), the first address that is not itself a trusted proxy
//! is the client. An address the client wrote to the left of that is never believed.
//!
//! `Forwarded` wins when present (it is the standard); a header that does not parse, or an
//! `unknown` or obfuscated hop where the walk needs an address, leaves the client as the
//! last trusted hop that named it: never an address nobody trusted vouched for.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use lanyard_core::config::Network;

use crate::state::AppState;

/// The client of a request, as far as it can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client {
    /// Its address: lockout counts it, sessions and the audit trail show it, logs carry it.
    pub(crate) ip: IpAddr,
    /// Whether it reached the proxy over https (`proto=https`, `X-Forwarded-Proto: https`
    /// from a trusted proxy). Lanyard makes every URL and cookie from the issuer, so this
    /// only says what the client used (the logs carry it).
    pub(crate) https: bool,
}

/// The client behind `peer`, trusting the proxies in `trusted` (see the module docs).
pub(crate) fn client(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> Client {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Client {
            ip: peer,
            https: false,
        };
    }
    let (hops, proto) = if headers.contains_key("forwarded") {
        forwarded(headers)
    } else {
        x_forwarded(headers)
    };
    let mut ip = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(addr) if is_trusted(*addr) => ip = *addr,
            Some(addr) => {
                ip = *addr;
                break;
            }
            // Not an address: nothing to its left can be vouched for.
            None => break,
        }
    }
    Client {
        ip,
        https: proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
    }
}

/// The `for=` of every element of every `Forwarded` header, in order (`None` where it is
/// missing, `unknown`, obfuscated or malformed), and the right-most element's `proto`.
fn forwarded(headers: &HeaderMap) -> (Vec<Option<IpAddr>>, Option<String>) {
    let mut hops = Vec::new();
    let mut proto = None;
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in split_outside_quotes(text, ',') {
            let mut for_ = None;
            proto = None;
            for pair in split_outside_quotes(element, ';') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match name.trim().to_ascii_lowercase().as_str() {
                    "for" => for_ = Some(node_address(&value)),
                    "proto" => proto = Some(value),
                    _ => {}
                }
            }
            hops.push(for_.flatten());
        }
    }
    (hops, proto)
}

/// `X-Forwarded-For`'s addresses in order (every header, comma-separated), and the last
/// `X-Forwarded-Proto`.
fn x_forwarded(headers: &HeaderMap) -> (Vec<Option<IpAddr>>, Option<String>) {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => hops.extend(text.split(',').map(|hop| node_address(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    let proto = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .map(|p| p.trim().to_owned());
    (hops, proto)
}

/// A node of RFC 7239 §6 or of `X-Forwarded-For`: `192.0.2.1`, `192.0.2.1:4711`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`, a bare IPv6 address; `None` for anything else
/// (`unknown`, `_hidden`, garbage).
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    node.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// `text` split at `sep`, except inside a quoted string.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token or a quoted string's content.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

/// The client of the request being handled (an extractor).
pub(crate) struct ClientIp(pub(crate) Client);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(Self(client(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn headers_from_a_peer_nobody_trusts_are_ignored() {
        let spoofed = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.4;proto=https"),
            ("x-forwarded-proto", "https"),
        ]);
        for trusted in [nets(&[]), nets(&["10.0.0.0/8"])] {
            let got = client(ip("192.0.2.1"), &spoofed, &trusted);
            assert_eq!(
                got,
                Client {
                    ip: ip("192.0.2.1"),
                    https: false
                }
            );
        }
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let cases = [
            // nginx's $proxy_add_x_forwarded_for: what the client sent, then its address.
            (vec![("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
            (
                vec![("x-forwarded-for", "6.6.6.6, 203.0.113.9")],
                "203.0.113.9",
            ),
            // Two proxies of ours: the second vouches for the first.
            (
                vec![("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")],
                "203.0.113.9",
            ),
            (
                vec![
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "203.0.113.9",
            ),
            (
                vec![("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")],
                "192.0.2.60",
            ),
            (
                vec![("forwarded", "for=\"[2001:db8:cafe::17]:4711\"")],
                "2001:db8:cafe::17",
            ),
            (
                vec![("forwarded", "for=6.6.6.6, for=198.51.100.17;by=10.0.0.1")],
                "198.51.100.17",
            ),
            (
                vec![
                    ("forwarded", "for=6.6.6.6"),
                    ("forwarded", "For=\"198.51.100.17:80\""),
                ],
                "198.51.100.17",
            ),
            // Forwarded wins over X-Forwarded-For.
            (
                vec![
                    ("x-forwarded-for", "6.6.6.6"),
                    ("forwarded", "for=198.51.100.17"),
                ],
                "198.51.100.17",
            ),
            // Every hop a proxy of ours: the farthest one we know of.
            (vec![("x-forwarded-for", "10.9.9.9, 10.0.0.2")], "10.9.9.9"),
            // Nothing to go on: the proxy itself.
            (vec![], "10.0.0.1"),
            (vec![("x-forwarded-for", "unknown")], "10.0.0.1"),
            (vec![("forwarded", "for=unknown")], "10.0.0.1"),
            (
                vec![("forwarded", "for=_hidden, for=203.0.113.9")],
                "203.0.113.9",
            ),
            // A garbage hop stops the walk where trust ends: never the client's claim.
            (
                vec![("x-forwarded-for", "6.6.6.6, garbage, 10.0.0.2")],
                "10.0.0.2",
            ),
            (
                vec![("forwarded", "for=\"6.6.6.6, for=7.7.7.7\"")],
                "10.0.0.1",
            ),
        ];
        for (pairs, expected) in cases {
            let got = client(ip("10.0.0.1"), &headers(&pairs), &trusted);
            assert_eq!(got.ip, ip(expected), "{pairs:?}");
        }
    }

    #[test]
    fn https_is_what_the_trusted_proxy_says() {
        let trusted = nets(&["127.0.0.1"]);
        let https = |pairs: &[(&'static str, &str)], peer: &str| {
            client(ip(peer), &headers(pairs), &trusted).https
        };
        assert!(https(&[("x-forwarded-proto", "https")], "127.0.0.1"));
        assert!(https(
            &[("forwarded", "for=1.2.3.4;proto=HTTPS")],
            "127.0.0.1"
        ));
        assert!(!https(&[("x-forwarded-proto", "http")], "127.0.0.1"));
        assert!(!https(
            &[("forwarded", "proto=https, for=1.2.3.4;proto=http")],
            "127.0.0.1"
        ));
        assert!(
            !https(&[("x-forwarded-proto", "https")], "127.0.0.2"),
            "untrusted peer"
        );
    }

    #[test]
    fn nodes_parse_as_rfc_7239_writes_them() {
        for (node, expected) in [
            ("192.0.2.43", Some("192.0.2.43")),
            ("192.0.2.43:47011", Some("192.0.2.43")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:80", Some("2001:db8::1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[192.0.2.43]", None),
            ("[2001:db8::1]x", None),
            ("unknown", None),
            ("_gazonk", None),
            ("", None),
        ] {
            assert_eq!(node_address(node), expected.map(ip), "{node:?}");
        }
    }
}
