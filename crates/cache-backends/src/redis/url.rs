//! Connection URLs: what a backend connects to, as fred configurations.

use cache_core::{Error, ErrorKind, Result};
use fred::types::config::{Config, Server};

/// What a URL names.
#[derive(Debug)]
pub(super) enum Target {
    /// One server, or a primary found through sentinels: one connection.
    Single(Config),
    /// A Redis Cluster: `template` holds the credentials and TLS settings
    /// every node connection shares, `seeds` the nodes to ask for the slot
    /// map.
    Cluster {
        /// The shared settings; its server is replaced per node.
        template: Config,
        /// The nodes named in the URL.
        seeds: Vec<Server>,
    },
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// The URL with its credentials hidden, for messages and debug output.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Parses a `redis://`, `rediss://`, `redis-cluster://` or
/// `redis-sentinel://` URL (and fred's `valkey` spellings of them).
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`] for a URL fred cannot read, or a TLS URL
/// without the `redis-tls` feature.
pub(super) fn parse(url: &str) -> Result<Target> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(invalid(format!(
            "{:?} is not a Redis URL (expected redis://, rediss://, redis-cluster:// or redis-sentinel://)",
            redact(url)
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    let (family, kind) = scheme.split_once('-').unwrap_or((&scheme, ""));
    if !matches!(family, "redis" | "rediss" | "valkey" | "valkeys")
        || !matches!(kind, "" | "cluster" | "sentinel")
    {
        return Err(invalid(format!(
            "{scheme}:// is not a supported Redis URL scheme (expected redis://, rediss://, redis-cluster:// or redis-sentinel://)"
        )));
    }
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    // Without a TLS feature fred reads a rediss:// URL without complaint
    // and connects in plain text; refusing is the only safe answer.
    if tls && !cfg!(feature = "redis-tls") {
        return Err(invalid(format!(
            "{scheme}:// needs TLS: enable the `redis-tls` feature of cache-backends (or tiercache)"
        )));
    }
    let config = Config::from_url(url).map_err(|e| {
        invalid(format!(
            "cannot use the Redis URL {:?}: {}",
            redact(url),
            e.details()
        ))
        .with_source(e)
    })?;
    if config.server.is_clustered() {
        let seeds = config.server.hosts();
        Ok(Target::Cluster {
            template: config,
            seeds,
        })
    } else {
        Ok(Target::Single(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_cluster_and_sentinel_urls() {
        assert!(matches!(
            parse("redis://127.0.0.1:6379/2"),
            Ok(Target::Single(c)) if c.database == Some(2)
        ));
        match parse("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001").unwrap() {
            Target::Cluster { seeds, .. } => assert_eq!(seeds.len(), 2),
            other => panic!("expected a cluster, got {other:?}"),
        }
        assert!(matches!(
            parse("redis-sentinel://127.0.0.1:26379?sentinelServiceName=main"),
            Ok(Target::Single(c)) if c.server.is_sentinel()
        ));
    }

    #[test]
    fn credentials_are_hidden() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0?x=a@b"),
            "redis://***@host:6379/0?x=a@b"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        let err = parse("redis://user:secret@host:notaport").expect_err("bad port");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn bad_urls_are_invalid_config() {
        for url in [
            "localhost:6379",
            "http://localhost",
            "redis+unix:///tmp/redis.sock",
            "redis-sentinel://h:1",
        ] {
            let err = parse(url).expect_err(url);
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}: {err}");
        }
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn tls_needs_its_feature() {
        for url in ["rediss://localhost:6380", "rediss-cluster://localhost:7000"] {
            let err = parse(url).expect_err(url);
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(err.message().contains("redis-tls"), "{err}");
        }
    }
}
