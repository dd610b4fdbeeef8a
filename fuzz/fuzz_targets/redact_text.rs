#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tokenward_redact::fuzzing::text_scrub(data);
});
