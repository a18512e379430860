//! Reading chain configs: the built-in ones, the variants real config files use, and typed
//! errors for malformed ones.

use plexus_eth::{ChainConfig, ConfigError, FAR_FUTURE_EPOCH, Fork, Network, Preset};

#[test]
fn builtin_configs_parse_with_their_values() {
    let m = Network::Mainnet.config();
    assert_eq!(
        (m.config_name.as_str(), m.preset),
        ("mainnet", Preset::Mainnet)
    );
    assert_eq!(m.fork(Fork::Fulu).epoch, 411392);
    assert_eq!(m.fork(Fork::Gloas).epoch, FAR_FUTURE_EPOCH);
    assert_eq!(m.blob_schedule.len(), 2);
    assert_eq!(m.max_payload_size, 10 * 1024 * 1024);
    assert_eq!(m.min_epochs_for_block_requests(), 33024);
    assert_eq!(m.seen_ttl_ms(), 768_000);
    let min = Network::Minimal.config();
    assert_eq!(min.preset, Preset::Minimal);
    assert_eq!(min.min_epochs_for_block_requests(), 272);
    assert_eq!(min.fork_at(1_000_000), Fork::Phase0);
    for n in Network::ALL {
        assert_eq!(Network::from_name(n.name()), Some(n));
        assert_eq!(ChainConfig::from_yaml(n.config_text()).unwrap(), n.config());
    }
}

/// The forms found in published config files: unquoted names, the older SECONDS_PER_SLOT and
/// GOSSIP_MAX_SIZE keys, retired keys, Windows line ends, trailing comments, a config from
/// before Fulu with no fork keys after Electra.
#[test]
fn published_config_variants_are_read() {
    let text = "# Extends the mainnet preset\r\nPRESET_BASE: mainnet\r\nCONFIG_NAME: hoodi\r\n\
        GENESIS_FORK_VERSION: 0x10000910\r\nALTAIR_FORK_VERSION: 0x20000910\r\nALTAIR_FORK_EPOCH: 0\r\n\
        BELLATRIX_FORK_VERSION: 0x30000910\r\nBELLATRIX_FORK_EPOCH: 0\r\n\
        CAPELLA_FORK_VERSION: 0x40000910\r\nCAPELLA_FORK_EPOCH: 0\r\n\
        DENEB_FORK_VERSION: 0x50000910\r\nDENEB_FORK_EPOCH: 0\r\n\
        ELECTRA_FORK_VERSION: 0x60000910\r\nELECTRA_FORK_EPOCH: 2048  # Pectra\r\n\
        TERMINAL_TOTAL_DIFFICULTY: 115792089237316195423570985008687907853269984665640564039457584007913129638912\r\n\
        DEPOSIT_CONTRACT_ADDRESS: 0x00000000219ab540356cBB839Cbe05303d7705Fa\r\n\
        SECONDS_PER_SLOT: 6\r\nGOSSIP_MAX_SIZE: 1048576\r\nTTFB_TIMEOUT: 5\r\n";
    let c = ChainConfig::from_yaml(text).unwrap();
    assert_eq!(c.slot_duration_ms, 6000);
    assert_eq!(c.max_payload_size, 1 << 20);
    assert_eq!(c.fork(Fork::Electra).epoch, 2048);
    assert_eq!(c.fork(Fork::Fulu).epoch, FAR_FUTURE_EPOCH);
    assert_eq!(c.fork_at(2047), Fork::Deneb);
    assert!(c.blob_schedule.is_empty());
    // A fork left out before a scheduled one is unscheduled, so the epochs go backwards.
    let gap = text.replace("DENEB_FORK_EPOCH: 0\r\n", "");
    assert!(matches!(
        ChainConfig::from_yaml(&gap),
        Err(ConfigError::ForkOrder {
            earlier: Fork::Deneb,
            later: Fork::Electra,
            ..
        })
    ));
}

fn mainnet_with(from: &str, to: &str) -> Result<ChainConfig, ConfigError> {
    let text = Network::Mainnet.config_text();
    assert!(text.contains(from), "{from}");
    ChainConfig::from_yaml(&text.replacen(from, to, 1))
}

#[test]
fn malformed_values_are_typed_errors() {
    let bad_value = |from: &str, to: &str, key: &str| match mainnet_with(from, to) {
        Err(ConfigError::BadValue { key: k, line, .. }) => {
            assert_eq!(k, key);
            assert!(line > 0);
        }
        other => panic!("{to}: {other:?}"),
    };
    bad_value(
        "GENESIS_FORK_VERSION: 0x00000000",
        "GENESIS_FORK_VERSION: 0x000000",
        "GENESIS_FORK_VERSION",
    );
    bad_value(
        "GENESIS_FORK_VERSION: 0x00000000",
        "GENESIS_FORK_VERSION: 00000000",
        "GENESIS_FORK_VERSION",
    );
    bad_value(
        "GENESIS_FORK_VERSION: 0x00000000",
        "GENESIS_FORK_VERSION: 0x0000000g",
        "GENESIS_FORK_VERSION",
    );
    bad_value(
        "ALTAIR_FORK_EPOCH: 74240",
        "ALTAIR_FORK_EPOCH: +74240",
        "ALTAIR_FORK_EPOCH",
    );
    bad_value(
        "ALTAIR_FORK_EPOCH: 74240",
        "ALTAIR_FORK_EPOCH: 074240",
        "ALTAIR_FORK_EPOCH",
    );
    bad_value(
        "ALTAIR_FORK_EPOCH: 74240",
        "ALTAIR_FORK_EPOCH: 18446744073709551616",
        "ALTAIR_FORK_EPOCH",
    );
    bad_value(
        "ALTAIR_FORK_EPOCH: 74240",
        "ALTAIR_FORK_EPOCH: 7.5",
        "ALTAIR_FORK_EPOCH",
    );
    bad_value(
        "MAX_PAYLOAD_SIZE: 10485760",
        "MAX_PAYLOAD_SIZE: 0x10",
        "MAX_PAYLOAD_SIZE",
    );
    bad_value(
        "    MAX_BLOBS_PER_BLOCK: 15",
        "    MAX_BLOBS_PER_BLOCK: many",
        "MAX_BLOBS_PER_BLOCK",
    );
    bad_value(
        "    MAX_BLOBS_PER_BLOCK: 15",
        "    MAX_BLOBS: 15",
        "MAX_BLOBS",
    );
    bad_value(
        "BLOB_SCHEDULE:\n  - EPOCH: 412672  # December 9, 2025\n    MAX_BLOBS_PER_BLOCK: 15\n  - EPOCH: 419072  # January 7, 2026\n    MAX_BLOBS_PER_BLOCK: 21",
        "BLOB_SCHEDULE: 3",
        "BLOB_SCHEDULE",
    );
    bad_value(
        "MAX_REQUEST_BLOCKS: 1024",
        "MAX_REQUEST_BLOCKS:\n  - A: 1",
        "MAX_REQUEST_BLOCKS",
    );
    // A scheduled fork needs its version.
    bad_value("FULU_FORK_VERSION: 0x06000000\n", "", "FULU_FORK_VERSION");
}

#[test]
fn malformed_structure_is_a_typed_error() {
    assert_eq!(
        mainnet_with("PRESET_BASE: 'mainnet'", "PRESET_BASE: 'gnosis'"),
        Err(ConfigError::UnknownPreset("gnosis".into()))
    );
    assert_eq!(
        mainnet_with("PRESET_BASE: 'mainnet'\n", ""),
        Err(ConfigError::Missing("PRESET_BASE"))
    );
    assert_eq!(
        mainnet_with("GENESIS_FORK_VERSION: 0x00000000\n", ""),
        Err(ConfigError::Missing("GENESIS_FORK_VERSION"))
    );
    assert!(matches!(
        mainnet_with("CONFIG_NAME: 'mainnet'", "CONFIG_NAME: 'mainnet'\nSUBNETS_PER_NODE: 3"),
        Err(ConfigError::DuplicateKey { key, .. }) if key == "SUBNETS_PER_NODE"
    ));
    assert!(matches!(
        mainnet_with("CONFIG_NAME: 'mainnet'", "CONFIG_NAME: 'mainnet'\n\tX: 1"),
        Err(ConfigError::Syntax { line: 5, .. })
    ));
    assert!(matches!(
        mainnet_with("SUBNETS_PER_NODE: 2", "SUBNETS_PER_NODE: *ref"),
        Err(ConfigError::Syntax { .. })
    ));
    assert!(matches!(
        ChainConfig::from_yaml(&format!(
            "{}\n{}",
            Network::Mainnet.config_text(),
            "#".repeat(300_000)
        )),
        Err(ConfigError::TooLarge { .. })
    ));
    assert!(matches!(
        ChainConfig::from_yaml("\u{0}"),
        Err(ConfigError::Syntax { line: 1, .. })
    ));
}

#[test]
fn inconsistent_schedules_are_rejected() {
    assert_eq!(
        mainnet_with("CAPELLA_FORK_EPOCH: 194048", "CAPELLA_FORK_EPOCH: 100"),
        Err(ConfigError::ForkOrder {
            earlier: Fork::Bellatrix,
            earlier_epoch: 144896,
            later: Fork::Capella,
            later_epoch: 100,
        })
    );
    assert_eq!(
        mainnet_with(
            "DENEB_FORK_VERSION: 0x04000000",
            "DENEB_FORK_VERSION: 0x03000000"
        ),
        Err(ConfigError::DuplicateVersion(Fork::Capella, Fork::Deneb))
    );
    assert_eq!(
        mainnet_with(
            "HEZE_FORK_EPOCH: 18446744073709551615",
            "HEZE_FORK_EPOCH: 500000"
        ),
        Err(ConfigError::UnsupportedFork("heze", 500000))
    );
    assert_eq!(
        mainnet_with("EPOCH: 419072", "EPOCH: 412672"),
        Err(ConfigError::DuplicateBlobEpoch(412672))
    );
    // Entries out of order are sorted (the spec's get_blob_parameters sorts them).
    let c = mainnet_with("EPOCH: 412672", "EPOCH: 430000").unwrap();
    assert_eq!(c.blob_schedule[0].epoch, 419072);
    assert_eq!(c.blob_parameters(425_000).max_blobs_per_block, 21);
    assert_eq!(c.blob_parameters(430_000).max_blobs_per_block, 15);
}

#[test]
fn values_outside_the_ssz_types_are_rejected() {
    let unsupported = |from: &str, to: &str, key: &str| match mainnet_with(from, to) {
        Err(ConfigError::Unsupported { key: k, .. }) => assert_eq!(k, key, "{to}"),
        other => panic!("{to}: {other:?}"),
    };
    unsupported(
        "ATTESTATION_SUBNET_COUNT: 64",
        "ATTESTATION_SUBNET_COUNT: 32",
        "ATTESTATION_SUBNET_COUNT",
    );
    unsupported(
        "MAX_REQUEST_BLOCKS: 1024",
        "MAX_REQUEST_BLOCKS: 2048",
        "MAX_REQUEST_BLOCKS",
    );
    unsupported(
        "MAX_REQUEST_BLOCKS_DENEB: 128",
        "MAX_REQUEST_BLOCKS_DENEB: 256",
        "MAX_REQUEST_BLOCKS_DENEB",
    );
    unsupported(
        "MAX_REQUEST_PAYLOADS: 128",
        "MAX_REQUEST_PAYLOADS: 0",
        "MAX_REQUEST_PAYLOADS",
    );
    unsupported(
        "MAX_BLOBS_PER_BLOCK_ELECTRA: 9",
        "MAX_BLOBS_PER_BLOCK_ELECTRA: 10",
        "MAX_BLOBS_PER_BLOCK_ELECTRA",
    );
    unsupported(
        "MAX_PAYLOAD_SIZE: 10485760",
        "MAX_PAYLOAD_SIZE: 2147483648",
        "MAX_PAYLOAD_SIZE",
    );
    unsupported(
        "MAX_PAYLOAD_SIZE: 10485760",
        "MAX_PAYLOAD_SIZE: 0",
        "MAX_PAYLOAD_SIZE",
    );
    unsupported(
        "DATA_COLUMN_SIDECAR_SUBNET_COUNT: 128",
        "DATA_COLUMN_SIDECAR_SUBNET_COUNT: 129",
        "DATA_COLUMN_SIDECAR_SUBNET_COUNT",
    );
    unsupported(
        "MAX_BLOBS_PER_BLOCK: 15",
        "MAX_BLOBS_PER_BLOCK: 5000",
        "BLOB_SCHEDULE[].MAX_BLOBS_PER_BLOCK",
    );
    unsupported(
        "MESSAGE_DOMAIN_VALID_SNAPPY: 0x01000000",
        "MESSAGE_DOMAIN_VALID_SNAPPY: 0x00000000",
        "MESSAGE_DOMAIN_VALID_SNAPPY",
    );
    unsupported(
        "CONFIG_NAME: 'mainnet'",
        "CONFIG_NAME: 'mainnet'\nNUMBER_OF_COLUMNS: 64",
        "NUMBER_OF_COLUMNS",
    );
}

/// Hand-built configs are checked when a schedule is made from them.
#[test]
fn hand_built_configs_are_validated_by_the_schedule() {
    let mut c = Network::Mainnet.config();
    c.forks[Fork::Altair.index()].epoch = 0;
    c.forks[Fork::Bellatrix.index()].version = None;
    assert_eq!(
        plexus_eth::ForkSchedule::new(c, [0; 32]),
        Err(ConfigError::Missing("the version of a scheduled fork"))
    );
}
