//! Nothing to link: the crate exists for `benches/peers.rs`, which measures shared-auth
//! beside peer crates in one run. Run it with `just bench-peers`.
