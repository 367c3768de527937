//! Differential fuzzing of the lean path's head decision against hyper's server:
//! whenever the lean path takes a request, hyper reads the same method,
//! target, version and headers, with no body and nothing behind it; and the socket
//! reader, skipping parses until a head may have ended, decides as a parse of what it
//! read would. The oracle is the one `cargo test --test serve` uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reactive_runtime::serve::conformance::Limits;

#[path = "../../reactive-runtime/tests/serve_support/hyper_oracle.rs"]
#[allow(dead_code)]
mod hyper_oracle;

/// Small enough that the fuzzer's inputs reach them.
const SMALL: Limits = Limits {
    max_head_bytes: 300,
    max_headers: 4,
};

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::default(), SMALL] {
        hyper_oracle::check(data, limits);
        // Reads of a few lengths, the length picked by the input itself.
        let step = 1 + data.first().map_or(0, |b| usize::from(b % 16));
        let cuts: Vec<usize> = (step..data.len()).step_by(step).collect();
        hyper_oracle::check_reads(data, &cuts, limits);
    }
});
