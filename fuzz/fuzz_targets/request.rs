//! Arbitrary bytes as one request to the apiserver's whole handler chain
//! (see `apiserver::fuzzing`): no panic, every error a Status.
#![no_main]

use apiserver::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(Harness::new).one(data);
});
