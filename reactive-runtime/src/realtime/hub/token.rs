//! Connection tokens: the random names clients use for their connection in acks.

/// A connection token: 128 random bits from the operating system, in hex. Tokens name
/// connections in acks; a sequential one would let a client of the same principal guess
/// its other connections' tokens (and tell how many streams the server has opened).
pub(super) fn random_token() -> String {
    use std::fmt::Write;
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Not expected on any supported platform; a token only names a connection of an
        // already authenticated principal, so a weaker one is logged, not fatal.
        tracing::error!(error = %e, "no OS randomness for a connection token");
        let fallback = std::collections::hash_map::RandomState::new();
        let n = std::hash::BuildHasher::hash_one(&fallback, crate::realtime::log::now_micros());
        bytes[..8].copy_from_slice(&n.to_le_bytes());
    }
    let mut token = String::with_capacity(32);
    for b in bytes {
        let _ = write!(token, "{b:02x}");
    }
    token
}
