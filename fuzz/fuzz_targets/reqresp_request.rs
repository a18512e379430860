#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::reqresp_request::run(data));
