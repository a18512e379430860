#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::yamux_frames::run(data));
