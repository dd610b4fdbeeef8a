#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tokenward_envelope::fuzzing::parse_and_open_bytes(data);
});
