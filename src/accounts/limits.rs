//! Per-client limits on the account operations that guess at credentials or
//! cost bcrypt work: a rate per client address (`AUTH_RATE_LIMIT`, governor's
//! GCRA), counted on each replica.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
    state::keyed::HashMapStateStore,
};

use crate::error::AppError;

/// `AUTH_RATE_LIMIT`: at most `count` attempts per `per` from one client
/// address, in bursts of up to `count`, refilled evenly over `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// `20/min`, `5/s`, `100/hour`, `1000/day`.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, unit) = text.trim().split_once('/')?;
        let count = count.trim().parse::<NonZeroU32>().ok()?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return None,
        };
        Some(Self { count, per })
    }
}

/// How many checks go by between sweeps of the addresses not seen lately.
const SWEEP_EVERY: u64 = 4096;

/// The per-address limiter of the account operations; `None` when
/// `AUTH_RATE_LIMIT=off`.
pub struct AuthLimiter {
    limiter: Option<RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>>,
    checks: AtomicU64,
}

impl AuthLimiter {
    pub fn new(rate: Option<Rate>) -> Self {
        let limiter = rate.and_then(|rate| {
            let period = rate.per / rate.count.get();
            Quota::with_period(period).map(|q| RateLimiter::hashmap(q.allow_burst(rate.count)))
        });
        Self {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one attempt from the client's allowance, or says when the next
    /// one will be allowed.
    pub fn check(&self, client: IpAddr) -> Result<(), AppError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Forget addresses whose allowance is full again: they hold no
            // state worth keeping, and an attacker who cycles through
            // addresses must not grow the map without bound.
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&client_key(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            tracing::info!(client = %client, "account attempts over the per-client limit");
            AppError::RateLimited {
                retry_after: wait.max(Duration::from_secs(1)),
            }
        })
    }
}

/// The key of a client address: an IPv6 client by its /64 network, which a
/// single client usually owns whole (and can pick addresses from at will).
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_their_units() {
        let rate = Rate::parse("20/min").unwrap();
        assert_eq!((rate.count.get(), rate.per), (20, Duration::from_secs(60)));
        assert_eq!(Rate::parse(" 5 / s ").unwrap().per, Duration::from_secs(1));
        assert_eq!(Rate::parse("100/hour").unwrap().per, Duration::from_secs(3600));
        for bad in [
            "",
            "20",
            "0/min",
            "-1/min",
            "20/fortnight",
            "x/min",
            "20/",
            "99999999999/min",
        ] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_untouched() {
        let limiter = AuthLimiter::new(Rate::parse("3/min"));
        let first: IpAddr = "127.0.0.2".parse().unwrap();
        let second: IpAddr = "127.0.0.3".parse().unwrap();
        for _ in 0..3 {
            limiter.check(first).unwrap();
        }
        match limiter.check(first) {
            Err(AppError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(10) && retry_after <= Duration::from_secs(20));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        limiter.check(second).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_network_s_allowance() {
        let limiter = AuthLimiter::new(Rate::parse("1/min"));
        limiter.check("2001:db8::1".parse().unwrap()).unwrap();
        assert!(limiter.check("2001:db8::ffff:2".parse().unwrap()).is_err());
        limiter.check("2001:db8:0:1::1".parse().unwrap()).unwrap();
        // An IPv4 client seen through an IPv6 socket is the IPv4 client.
        limiter.check("10.0.0.1".parse().unwrap()).unwrap();
        assert!(limiter.check("::ffff:10.0.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn off_means_no_limit() {
        let limiter = AuthLimiter::new(None);
        for _ in 0..1000 {
            limiter.check("127.0.0.2".parse().unwrap()).unwrap();
        }
    }
}
