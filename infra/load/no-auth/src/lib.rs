//! `just load` only: my-service and my-bff without authentication, to measure what the
//! auth layers and the token middleware cost. Never deploy these binaries.

/// Refuses to start unless `BENCH_NO_AUTH_ACK=yes`: a binary with no authentication must
/// never run by accident (say, left in target/ and picked up by a script).
pub fn acknowledged() -> Result<(), String> {
    if std::env::var("BENCH_NO_AUTH_ACK").as_deref() == Ok("yes") {
        Ok(())
    } else {
        Err(
            "this binary has NO authentication: it is for `just load` only; set \
             BENCH_NO_AUTH_ACK=yes if that is what you want"
                .to_owned(),
        )
    }
}
