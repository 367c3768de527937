//! The lean path's decision on a connection's first bytes as a pure function, for the
//! differential tests against hyper (`reactive-runtime/tests/serve_support/`) and the fuzz
//! target (`fuzz/`). Not a stable API.

use axum::http::Request;

use super::config::Config;
use super::head::{HeadBuf, Parse, ReadHead};

/// The limits the decision depends on (the rest of [`serve`](super::serve)'s
/// configuration does not change it, `events_paths` aside, which stays the default).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let config = Config::default();
        Limits {
            max_head_bytes: config.max_head_bytes,
            max_headers: config.max_headers,
        }
    }
}

impl Limits {
    fn config(self) -> Config {
        Config {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers,
            ..Config::default()
        }
    }
}

/// What the lean path does with the bytes a connection sent first.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per check, never stored in bulk
pub enum Decision {
    /// Reads more.
    Partial,
    /// Refuses the head with `431`.
    TooLarge,
    /// Serves this request itself: the bytes are exactly one bodiless request head.
    Take(Request<()>),
    /// Hands the bytes to hyper, which serves or refuses them.
    Hyper,
}

/// The lean path's decision on `buf` read as a whole.
pub fn decide(buf: &[u8], limits: Limits) -> Decision {
    match super::head::parse(buf, &limits.config()) {
        Parse::Partial => Decision::Partial,
        Parse::TooLarge => Decision::TooLarge,
        Parse::EventStream(req) => Decision::Take(req.map(|_| ())),
        Parse::Other => Decision::Hyper,
    }
}

/// The decision of the socket reader when `buf` arrives in reads ending at `cuts`
/// (ascending, each at most `buf.len()`; the end of `buf` is always the last): the
/// decision, the bytes it was made on and how many full parses it took.
pub fn decide_in_reads(buf: &[u8], cuts: &[usize], limits: Limits) -> (Decision, usize, usize) {
    let config = limits.config();
    let mut head = HeadBuf::new(&config);
    let mut from = 0;
    for &cut in cuts
        .iter()
        .chain(std::iter::once(&buf.len()))
        .filter(|&&c| c <= buf.len())
    {
        if cut <= from {
            continue;
        }
        // As the reader does: never more than the head limit.
        let cut = cut.min(from + config.max_head_bytes.saturating_sub(head.buf.len()));
        head.buf.extend_from_slice(&buf[from..cut]);
        from = cut;
        let decision = match head.decide() {
            None => continue,
            Some(ReadHead::Closed) => unreachable!("a decision never closes"),
            Some(ReadHead::TooLarge) => Decision::TooLarge,
            Some(ReadHead::EventStream(req)) => Decision::Take(req.map(|_| ())),
            Some(ReadHead::Other(_)) => Decision::Hyper,
        };
        return (decision, from, head.parses);
    }
    (Decision::Partial, from, head.parses)
}
