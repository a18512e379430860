#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| plexus_fuzz::tls_certificate::run(data));
