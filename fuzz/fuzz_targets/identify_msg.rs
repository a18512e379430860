#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::identify_msg::run(data));
