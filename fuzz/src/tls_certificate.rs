//! Fuzz body for `tls_certificate`: arbitrary bytes as the one certificate a remote presents in
//! the libp2p TLS handshake.
//!
//! Verified at a fixed time inside the seeds' validity (the spec vectors and plexus' own
//! certificates are valid from 1975 to 4096), so the parser, the extension walk, the
//! `SignedKey` decoder, the host key decoder and both signature checks are all reached. Must
//! never panic; whatever is accepted is accepted again with the same host key, and
//! `public_key_of_accepted` (which checks no signature) gives that key too. On other input
//! `public_key_of_accepted` must not panic either: it parses the same remote bytes.

use std::time::Duration;

use plexus_tls::rustls::pki_types::{CertificateDer, UnixTime};
use plexus_tls::{public_key_of_accepted, verify_certificate};

/// 2025-01-01T00:00:00Z.
const NOW: u64 = 1_735_689_600;

/// Run one input.
pub fn run(data: &[u8]) {
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW));
    let certs = [CertificateDer::from(data)];
    let unchecked = public_key_of_accepted(&certs);
    if let Ok(key) = verify_certificate(data, now) {
        assert_eq!(verify_certificate(data, now), Ok(key.clone()));
        assert_eq!(unchecked, Ok(key));
    }
}
