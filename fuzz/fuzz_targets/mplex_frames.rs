#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::mplex_frames::run(data));
