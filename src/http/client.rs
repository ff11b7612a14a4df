//! Who sent a request: the client's address (for the per-client limits) and
//! its User-Agent (for sessions), worked out once by a middleware and handed
//! to both transports as a request extension.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::Response,
};

/// The longest User-Agent kept with a session, in characters.
pub const USER_AGENT_MAX_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub address: IpAddr,
    pub user_agent: Option<String>,
}

impl Client {
    /// A client with no HTTP request behind it (the command line).
    pub fn local() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: None,
        }
    }

    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted_proxy_hops: usize) -> Self {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(USER_AGENT_MAX_CHARS)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self {
            address: address(peer, headers, trusted_proxy_hops),
            user_agent,
        }
    }
}

/// The client's address: the peer's, or with `trusted_proxy_hops` proxies of
/// our own in front, the address that many hops back in `X-Forwarded-For`
/// (each proxy appends the address it was connected from, so only the
/// entries our proxies appended can be believed; whatever a client put in
/// front of them cannot move it out of its own allowance).
pub fn address(peer: IpAddr, headers: &HeaderMap, trusted_proxy_hops: usize) -> IpAddr {
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // The chain from the client to us: the forwarded entries, then the peer.
    // Our proxies are the last `trusted_proxy_hops` links of it; a chain
    // shorter than that has its first entry as the client.
    let Some(index) = forwarded.len().checked_sub(trusted_proxy_hops) else {
        return forwarded.first().and_then(|e| parse_entry(e)).unwrap_or(peer);
    };
    forwarded
        .get(index)
        .and_then(|entry| parse_entry(entry))
        .unwrap_or(peer)
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address);
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Attaches the request's [`Client`].
pub async fn attach(State(trusted_proxy_hops): State<usize>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ConnectInfo(p)| p.ip());
    let client = Client::of(peer, request.headers(), trusted_proxy_hops);
    request.extensions_mut().insert(client);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in forwarded {
            h.append("x-forwarded-for", f.parse().unwrap());
        }
        h
    }

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn with_no_trusted_proxy_the_peer_is_the_client() {
        assert_eq!(address(PEER, &headers(&["203.0.113.7"]), 0), PEER);
        assert_eq!(address(PEER, &headers(&[]), 0), PEER);
    }

    #[test]
    fn a_trusted_proxy_s_entry_is_believed_and_a_forged_one_is_not() {
        // The client forged the first entry; our proxy appended the second.
        let h = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(address(PEER, &h, 1), ip("203.0.113.7"));
        assert_eq!(address(PEER, &h, 2), ip("198.51.100.1"));
        // Entries over several header lines count as one list.
        let h = headers(&["198.51.100.1", "203.0.113.7"]);
        assert_eq!(address(PEER, &h, 1), ip("203.0.113.7"));
    }

    #[test]
    fn short_or_garbled_chains_fall_back_safely() {
        assert_eq!(address(PEER, &headers(&[]), 1), PEER);
        assert_eq!(address(PEER, &headers(&["203.0.113.7"]), 3), ip("203.0.113.7"));
        assert_eq!(address(PEER, &headers(&["not an address"]), 1), PEER);
        assert_eq!(address(PEER, &headers(&["203.0.113.7:4711"]), 1), ip("203.0.113.7"));
        assert_eq!(address(PEER, &headers(&["[2001:db8::1]:4711"]), 1), ip("2001:db8::1"));
    }

    #[test]
    fn the_user_agent_is_cut_and_cleaned() {
        let mut h = HeaderMap::new();
        h.insert(header::USER_AGENT, "x".repeat(500).parse().unwrap());
        assert_eq!(Client::of(PEER, &h, 0).user_agent.unwrap().len(), USER_AGENT_MAX_CHARS);
        h.insert(header::USER_AGENT, "   ".parse().unwrap());
        assert_eq!(Client::of(PEER, &h, 0).user_agent, None);
    }
}
