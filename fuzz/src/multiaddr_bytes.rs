//! Fuzz body for `multiaddr_bytes`: the binary multiaddr decoder.

use std::str::FromStr;

use plexus_multiaddr::Multiaddr;

/// Run one input: decoding never panics; anything accepted re-encodes to exactly the input and
/// survives a trip through its text form.
pub fn run(data: &[u8]) {
    let Ok(m) = Multiaddr::from_bytes(data) else {
        return;
    };
    assert_eq!(
        m.to_vec(),
        data,
        "accepted binary multiaddr is not canonical"
    );
    let text = m.to_string();
    let back = Multiaddr::from_str(&text).expect("printed multiaddr does not parse");
    assert_eq!(back, m, "text round trip changed {text}");
}
