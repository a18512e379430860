#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::gossipsub_router::run(data));
