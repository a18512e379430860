//! Fuzz body for `multiaddr_str`: the text multiaddr parser.

use std::str::FromStr;

use plexus_multiaddr::Multiaddr;

/// Run one input (lossy UTF-8): parsing never panics; anything accepted prints to text that
/// parses back to the same address, and its binary form decodes back to it.
pub fn run(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Ok(m) = Multiaddr::from_str(&s) else {
        return;
    };
    let printed = m.to_string();
    assert_eq!(
        Multiaddr::from_str(&printed).expect("printed multiaddr does not parse"),
        m
    );
    // Printing is a fixed point after one round.
    assert_eq!(Multiaddr::from_str(&printed).unwrap().to_string(), printed);
    assert_eq!(
        Multiaddr::from_bytes(&m.to_vec()).expect("encoded multiaddr does not decode"),
        m
    );
}
