#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tokenward_plaid::webhooks::fuzzing::parse_body(data);
});
