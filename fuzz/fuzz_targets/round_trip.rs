#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tokenward_envelope::fuzzing::round_trip(data);
});
