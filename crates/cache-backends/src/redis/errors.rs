//! fred's errors as tiercache's: the tiered cache skips a tier that fails
//! with [`ErrorKind::Unavailable`], [`ErrorKind::Timeout`] or
//! [`ErrorKind::Backend`], so every failure must land on one of them.

use std::time::Duration;

use cache_core::{Error, ErrorKind};
use fred::error::{Error as FredError, ErrorKind as FredKind};

/// Converts an error fred returned for a command sent to `server`.
///
/// `connected` is whether the connection was up after the failure. fred
/// reports a command it could not route or write during a reconnection as
/// [`FredKind::Unknown`], the same kind it gives a server's plain `ERR`
/// reply, so the connection state tells the two apart. The state can still
/// read as up just after the server went away, before fred noticed, so a
/// command fred says it had no connection to route to is an outage
/// whatever the state says.
pub(super) fn from_fred(err: FredError, server: &str, connected: bool) -> Error {
    let kind = match err.kind() {
        FredKind::Timeout => ErrorKind::Timeout,
        FredKind::Canceled
        | FredKind::IO
        | FredKind::Routing
        | FredKind::Backpressure
        | FredKind::Cluster => ErrorKind::Unavailable,
        FredKind::Unknown if !connected || is_unroutable(&err) => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    let message = match kind {
        ErrorKind::Timeout => format!("Redis at {server} did not answer in time"),
        ErrorKind::Unavailable => format!("Redis at {server} is unavailable"),
        _ => format!("Redis at {server} failed a command"),
    };
    Error::new(kind, message).with_source(err)
}

/// Whether fred failed a command because it had no connection to send it
/// on (its message for that case; fred gives it no kind of its own).
fn is_unroutable(err: &FredError) -> bool {
    err.details().starts_with("Failed to route command")
}

/// A call refused because the connection to `server` is down; fred is
/// reconnecting in the background.
pub(super) fn disconnected(server: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("Redis at {server} is not connected; reconnecting in the background"),
    )
}

/// A call that did not finish within the command timeout.
pub(super) fn timed_out(server: &str, after: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("Redis at {server} did not answer within {after:?}"),
    )
}

fn fred_source(err: &Error) -> Option<&FredError> {
    err.source_as::<FredError>()
}

/// Whether the server said the key holds something other than a string,
/// which for this tier means a record that is not ours.
pub(super) fn is_wrong_type(err: &Error) -> bool {
    fred_source(err).is_some_and(|e| e.details().starts_with("WRONGTYPE"))
}

/// Whether a cluster node redirected the command: the slot map is stale,
/// but the node itself is healthy.
pub(super) fn is_redirect(err: &Error) -> bool {
    fred_source(err).is_some_and(|e| e.is_moved() || e.is_ask())
}

/// Whether the failure says the server is unreachable or too slow, as
/// opposed to a server that answered with an error.
pub(super) fn is_outage(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::Timeout => true,
        ErrorKind::Unavailable => !is_redirect(err),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_failure() {
        let cases = [
            (FredKind::Timeout, true, ErrorKind::Timeout),
            (FredKind::IO, true, ErrorKind::Unavailable),
            (FredKind::Canceled, true, ErrorKind::Unavailable),
            (FredKind::Unknown, false, ErrorKind::Unavailable),
            (FredKind::Unknown, true, ErrorKind::Backend),
            (FredKind::InvalidArgument, true, ErrorKind::Backend),
        ];
        for (fred_kind, connected, want) in cases {
            let err = from_fred(FredError::new(fred_kind.clone(), "x"), "h:1", connected);
            assert_eq!(err.kind(), want, "{fred_kind:?} connected={connected}");
        }
    }

    #[test]
    fn a_command_with_no_connection_to_go_to_is_an_outage_even_if_the_state_lags() {
        // fred's words when the server has just gone and its state has not
        // caught up; seen when redis-server is killed under load.
        let err = from_fred(
            FredError::new(FredKind::Unknown, "Failed to route command."),
            "h:1",
            true,
        );
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(is_outage(&err));
    }

    #[test]
    fn redirects_and_wrong_types_are_recognised() {
        let moved = from_fred(
            FredError::new(FredKind::Cluster, "MOVED 3999 127.0.0.1:6381"),
            "h:1",
            true,
        );
        assert!(is_redirect(&moved));
        assert!(!is_outage(&moved));
        let down = from_fred(
            FredError::new(FredKind::Cluster, "CLUSTERDOWN"),
            "h:1",
            true,
        );
        assert!(is_outage(&down));
        let wrong = from_fred(
            FredError::new(
                FredKind::InvalidArgument,
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            "h:1",
            true,
        );
        assert!(is_wrong_type(&wrong));
        assert!(!is_outage(&wrong));
        assert!(is_outage(&timed_out("h:1", Duration::from_millis(5))));
        assert!(is_outage(&disconnected("h:1")));
    }
}
