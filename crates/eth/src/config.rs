//! The chain config: fork schedule, blob schedule and the networking values, read from the
//! consensus-spec config format, plus the built-in networks.

use crate::types::{Epoch, FAR_FUTURE_EPOCH, Fork, Root, Version};
use crate::yaml::{self, Document, Scalar, Value};

/// The spec's `MAX_PAYLOAD_SIZE` default (10 MiB).
pub const DEFAULT_MAX_PAYLOAD_SIZE: u64 = 10 * 1024 * 1024;
/// Largest `MAX_PAYLOAD_SIZE` a config may set: 1 GiB bounds what one message may allocate.
pub const MAX_MAX_PAYLOAD_SIZE: u64 = 1024 * 1024 * 1024;
/// `MAX_BLOB_COMMITMENTS_PER_BLOCK` (both presets): no blob count may exceed it.
pub const MAX_BLOB_COMMITMENTS_PER_BLOCK: u64 = 4096;
/// `NUMBER_OF_COLUMNS` (both presets).
pub const NUMBER_OF_COLUMNS: u64 = 128;
/// `SYNC_COMMITTEE_SUBNET_COUNT` (a constant, not config).
pub const SYNC_COMMITTEE_SUBNET_COUNT: u64 = 4;
/// `MAX_CONCURRENT_REQUESTS` (a phase 0 constant): concurrent requests per protocol id.
pub const MAX_CONCURRENT_REQUESTS: u64 = 2;
/// `MAX_REQUEST_LIGHT_CLIENT_UPDATES` (an Altair constant).
pub const MAX_REQUEST_LIGHT_CLIENT_UPDATES: u64 = 128;

/// A config could not be read or is not usable. Always `Local` blame: configs are our input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is larger than [`yaml::MAX_CONFIG_LEN`](crate::MAX_CONFIG_LEN).
    #[error("config is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A line is outside the accepted format.
    #[error("config line {line}: {reason}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key appears twice (at top level or inside one list item).
    #[error("config line {line}: duplicate key {key}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// 1-based line of the second occurrence.
        line: usize,
    },
    /// A required key is absent.
    #[error("config lacks {0}")]
    Missing(&'static str),
    /// A value has the wrong form (not a u64, not 0x and the right number of bytes, …).
    #[error("config line {line}: {key} = {value:?} is not {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as written (cut to 80 characters).
        value: String,
        /// 1-based line.
        line: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A value is well formed but not usable (out of range, inconsistent with another).
    #[error("config: {key} = {value}: {reason}")]
    Unsupported {
        /// The key.
        key: &'static str,
        /// The value.
        value: u64,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// `PRESET_BASE` names a preset this crate does not know.
    #[error("config: unknown PRESET_BASE {0:?} (mainnet or minimal)")]
    UnknownPreset(String),
    /// Fork epochs go backwards.
    #[error(
        "config: {later} fork epoch {later_epoch} is before the {earlier} fork epoch {earlier_epoch}"
    )]
    ForkOrder {
        /// The earlier fork.
        earlier: Fork,
        /// Its epoch.
        earlier_epoch: Epoch,
        /// The later fork.
        later: Fork,
        /// Its (smaller) epoch.
        later_epoch: Epoch,
    },
    /// Two forks share a version, so a digest would not identify the fork.
    #[error("config: {0} and {1} have the same fork version")]
    DuplicateVersion(Fork, Fork),
    /// A fork after Gloas is scheduled; its rules are unknown to this crate.
    #[error("config schedules {0} at epoch {1}; this crate knows forks up to gloas")]
    UnsupportedFork(&'static str, Epoch),
    /// Two `BLOB_SCHEDULE` entries share an epoch.
    #[error("config: BLOB_SCHEDULE has two entries for epoch {0}")]
    DuplicateBlobEpoch(Epoch),
    /// Two scheduled digests are equal (a 4-byte collision), so a digest would not identify
    /// its fork.
    #[error("fork digest {0} occurs twice in the schedule")]
    DigestCollision(String),
}

/// The preset a config extends (`PRESET_BASE`): compile-time constants of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The mainnet preset.
    Mainnet,
    /// The minimal preset (spec tests, small devnets).
    Minimal,
}

impl Preset {
    /// `SLOTS_PER_EPOCH`.
    pub fn slots_per_epoch(self) -> u64 {
        match self {
            Preset::Mainnet => 32,
            Preset::Minimal => 8,
        }
    }

    /// `MAX_COMMITTEES_PER_SLOT`.
    pub fn max_committees_per_slot(self) -> u64 {
        match self {
            Preset::Mainnet => 64,
            Preset::Minimal => 4,
        }
    }

    /// `TARGET_COMMITTEE_SIZE`.
    pub fn target_committee_size(self) -> u64 {
        match self {
            Preset::Mainnet => 128,
            Preset::Minimal => 4,
        }
    }

    /// `SYNC_COMMITTEE_SIZE`.
    pub fn sync_committee_size(self) -> u64 {
        match self {
            Preset::Mainnet => 512,
            Preset::Minimal => 32,
        }
    }

    /// `MAX_VALIDATORS_PER_COMMITTEE` (the same in both presets).
    pub fn max_validators_per_committee(self) -> u64 {
        2048
    }

    /// `PTC_SIZE` (Gloas).
    pub fn ptc_size(self) -> u64 {
        match self {
            Preset::Mainnet => 512,
            Preset::Minimal => 16,
        }
    }

    /// Name as written in `PRESET_BASE`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Mainnet => "mainnet",
            Preset::Minimal => "minimal",
        }
    }
}

/// One `BLOB_SCHEDULE` entry (`BlobParameters` in the Fulu spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobParameters {
    /// Activation epoch.
    pub epoch: Epoch,
    /// Blobs allowed per block from that epoch.
    pub max_blobs_per_block: u64,
}

/// A fork's version and activation epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ForkParams {
    /// Fork version; `None` when the config leaves an unscheduled fork out.
    pub version: Option<Version>,
    /// Activation epoch; [`FAR_FUTURE_EPOCH`] when not scheduled.
    pub epoch: Epoch,
}

/// The networking view of a chain config. Built by [`ChainConfig::from_yaml`] or
/// [`Network::config`]; [`ChainConfig::validate`] states the invariants (a hand-built value is
/// checked by [`ForkSchedule::new`](crate::ForkSchedule::new)).
///
/// Keys this crate does not use are ignored (after the syntax check). Networking keys that a
/// config omits take the spec's value (older configs predate some of them; `MAX_PAYLOAD_SIZE`
/// falls back to the older `GOSSIP_MAX_SIZE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainConfig {
    /// `CONFIG_NAME` (empty when absent).
    pub config_name: String,
    /// `PRESET_BASE`.
    pub preset: Preset,
    /// Versions and epochs, indexed by [`Fork::index`]; phase 0's epoch is 0.
    pub forks: [ForkParams; 8],
    /// `BLOB_SCHEDULE`, sorted by epoch.
    pub blob_schedule: Vec<BlobParameters>,
    /// `SLOT_DURATION_MS` (or `SECONDS_PER_SLOT` × 1000 in older configs).
    pub slot_duration_ms: u64,
    /// `MAX_PAYLOAD_SIZE`: uncompressed bytes of one gossip message or Req/Resp chunk.
    pub max_payload_size: u64,
    /// `MAX_REQUEST_BLOCKS` (before Deneb).
    pub max_request_blocks: u64,
    /// `MAX_REQUEST_BLOCKS_DENEB`.
    pub max_request_blocks_deneb: u64,
    /// `MAX_REQUEST_PAYLOADS` (Gloas).
    pub max_request_payloads: u64,
    /// `MAX_BLOBS_PER_BLOCK` (Deneb).
    pub max_blobs_per_block: u64,
    /// `MAX_BLOBS_PER_BLOCK_ELECTRA`.
    pub max_blobs_per_block_electra: u64,
    /// `BLOB_SIDECAR_SUBNET_COUNT` (Deneb).
    pub blob_sidecar_subnet_count: u64,
    /// `BLOB_SIDECAR_SUBNET_COUNT_ELECTRA`.
    pub blob_sidecar_subnet_count_electra: u64,
    /// `DATA_COLUMN_SIDECAR_SUBNET_COUNT`.
    pub data_column_sidecar_subnet_count: u64,
    /// `ATTESTATION_SUBNET_COUNT` (must be 64: `MetaData.attnets` is a `Bitvector[64]`).
    pub attestation_subnet_count: u64,
    /// `EPOCHS_PER_SUBNET_SUBSCRIPTION`.
    pub epochs_per_subnet_subscription: u64,
    /// `ATTESTATION_PROPAGATION_SLOT_RANGE`.
    pub attestation_propagation_slot_range: u64,
    /// `MAXIMUM_GOSSIP_CLOCK_DISPARITY` in milliseconds.
    pub maximum_gossip_clock_disparity_ms: u64,
    /// `SUBNETS_PER_NODE`.
    pub subnets_per_node: u64,
    /// `MESSAGE_DOMAIN_VALID_SNAPPY`.
    pub message_domain_valid_snappy: [u8; 4],
    /// `MESSAGE_DOMAIN_INVALID_SNAPPY`.
    pub message_domain_invalid_snappy: [u8; 4],
    /// `MIN_EPOCHS_FOR_BLOB_SIDECARS_REQUESTS`.
    pub min_epochs_for_blob_sidecars_requests: u64,
    /// `MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS`.
    pub min_epochs_for_data_column_sidecars_requests: u64,
    /// `MIN_VALIDATOR_WITHDRAWABILITY_DELAY` (for `compute_min_epochs_for_block_requests`).
    pub min_validator_withdrawability_delay: u64,
    /// `CHURN_LIMIT_QUOTIENT` (for `compute_min_epochs_for_block_requests`).
    pub churn_limit_quotient: u64,
}

/// Read a key's scalar.
fn scalar<'a>(doc: &'a Document, key: &str) -> Result<Option<&'a Scalar>, ConfigError> {
    match doc.get(key) {
        None => Ok(None),
        Some(Value::Scalar(s)) => Ok(Some(s)),
        Some(Value::List { line, .. }) => Err(ConfigError::BadValue {
            key: key.to_owned(),
            value: "<list>".into(),
            line: *line,
            expected: "a single value",
        }),
    }
}

fn bad(key: &str, s: &Scalar, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        value: s.text.chars().take(80).collect(),
        line: s.line,
        expected,
    }
}

/// Decimal u64: digits only, no sign, no leading zeros.
fn parse_u64(key: &str, s: &Scalar) -> Result<u64, ConfigError> {
    let t = s.text.as_str();
    if !t.bytes().all(|b| b.is_ascii_digit()) || (t.len() > 1 && t.starts_with('0')) {
        return Err(bad(key, s, "a decimal unsigned integer"));
    }
    t.parse::<u64>()
        .map_err(|_| bad(key, s, "an integer below 2^64"))
}

/// `0x` followed by exactly `2N` hex digits.
fn parse_bytes<const N: usize>(key: &str, s: &Scalar) -> Result<[u8; N], ConfigError> {
    const EXPECTED: &str = "0x and the right number of hex digits";
    let hex = s
        .text
        .strip_prefix("0x")
        .ok_or_else(|| bad(key, s, EXPECTED))?;
    if hex.len() != 2 * N {
        return Err(bad(key, s, EXPECTED));
    }
    let mut out = [0u8; N];
    data_encoding::HEXLOWER_PERMISSIVE
        .decode_mut(hex.as_bytes(), &mut out)
        .map_err(|_| bad(key, s, EXPECTED))?;
    Ok(out)
}

fn opt_u64(doc: &Document, key: &str) -> Result<Option<u64>, ConfigError> {
    scalar(doc, key)?.map(|s| parse_u64(key, s)).transpose()
}

fn u64_or(doc: &Document, key: &str, default: u64) -> Result<u64, ConfigError> {
    Ok(opt_u64(doc, key)?.unwrap_or(default))
}

fn bytes4_or(doc: &Document, key: &str, default: [u8; 4]) -> Result<[u8; 4], ConfigError> {
    Ok(scalar(doc, key)?
        .map(|s| parse_bytes::<4>(key, s))
        .transpose()?
        .unwrap_or(default))
}

fn unsupported(key: &'static str, value: u64, reason: &'static str) -> ConfigError {
    ConfigError::Unsupported { key, value, reason }
}

/// Typenum bounds of the SSZ request types (see `reqresp`): configs must stay within them.
pub(crate) mod ssz_caps {
    /// `BeaconBlockRoots` list limit (`MAX_REQUEST_BLOCKS`, phase 0).
    pub(crate) const BLOCK_ROOTS: u64 = 1024;
    /// `DataColumnsByRootIdentifiers` list limit (`MAX_REQUEST_BLOCKS_DENEB`).
    pub(crate) const COLUMN_IDENTIFIERS: u64 = 128;
    /// `BlobIdentifiers` list limit (`compute_max_request_blob_sidecars()`, Electra).
    pub(crate) const BLOB_IDENTIFIERS: u64 = 1152;
    /// `ExecutionPayloadEnvelopeRoots` list limit (`MAX_REQUEST_PAYLOADS`).
    pub(crate) const PAYLOAD_ROOTS: u64 = 128;
}

impl ChainConfig {
    /// Read a config in the consensus-spec YAML format (`configs/mainnet.yaml` upstream, the
    /// `config.yaml` of a network's metadata) and [`validate`](Self::validate) it.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let doc = yaml::parse(text)?;
        let preset_s = scalar(&doc, "PRESET_BASE")?.ok_or(ConfigError::Missing("PRESET_BASE"))?;
        let preset = match preset_s.text.as_str() {
            "mainnet" => Preset::Mainnet,
            "minimal" => Preset::Minimal,
            other => return Err(ConfigError::UnknownPreset(other.chars().take(80).collect())),
        };
        let config_name = scalar(&doc, "CONFIG_NAME")?
            .map(|s| s.text.clone())
            .unwrap_or_default();

        let mut forks = [ForkParams {
            version: None,
            epoch: FAR_FUTURE_EPOCH,
        }; 8];
        for fork in Fork::ALL {
            let vkey = format!("{}_FORK_VERSION", fork.config_prefix());
            let version = scalar(&doc, &vkey)?
                .map(|s| parse_bytes::<4>(&vkey, s))
                .transpose()?;
            if fork == Fork::Phase0 && version.is_none() {
                return Err(ConfigError::Missing("GENESIS_FORK_VERSION"));
            }
            let ekey = format!("{}_FORK_EPOCH", fork.config_prefix());
            let epoch = match scalar(&doc, &ekey)? {
                _ if fork == Fork::Phase0 => 0,
                Some(s) => {
                    let epoch = parse_u64(&ekey, s)?;
                    if epoch != FAR_FUTURE_EPOCH && version.is_none() {
                        return Err(ConfigError::BadValue {
                            key: vkey,
                            value: String::new(),
                            line: s.line,
                            expected: "present for a scheduled fork",
                        });
                    }
                    epoch
                }
                None => FAR_FUTURE_EPOCH,
            };
            forks[fork.index()] = ForkParams { version, epoch };
        }
        for later in ["HEZE"] {
            if let Some(epoch) = opt_u64(&doc, &format!("{later}_FORK_EPOCH"))?
                && epoch != FAR_FUTURE_EPOCH
            {
                return Err(ConfigError::UnsupportedFork("heze", epoch));
            }
        }

        let mut blob_schedule = Vec::new();
        match doc.get("BLOB_SCHEDULE") {
            None => {}
            Some(Value::Scalar(s)) => return Err(bad("BLOB_SCHEDULE", s, "a list")),
            Some(Value::List { items, .. }) => {
                for item in items {
                    let field = |k: &'static str| -> Result<u64, ConfigError> {
                        let s = item.get(k).ok_or(ConfigError::Missing(match k {
                            "EPOCH" => "BLOB_SCHEDULE[].EPOCH",
                            _ => "BLOB_SCHEDULE[].MAX_BLOBS_PER_BLOCK",
                        }))?;
                        parse_u64(k, s)
                    };
                    if let Some((k, s)) = item
                        .iter()
                        .find(|(k, _)| !matches!(k.as_str(), "EPOCH" | "MAX_BLOBS_PER_BLOCK"))
                    {
                        return Err(bad(
                            k,
                            s,
                            "EPOCH or MAX_BLOBS_PER_BLOCK in a BLOB_SCHEDULE entry",
                        ));
                    }
                    blob_schedule.push(BlobParameters {
                        epoch: field("EPOCH")?,
                        max_blobs_per_block: field("MAX_BLOBS_PER_BLOCK")?,
                    });
                }
            }
        }
        blob_schedule.sort_by_key(|b| b.epoch);

        let slot_duration_ms = match opt_u64(&doc, "SLOT_DURATION_MS")? {
            Some(ms) => ms,
            None => match opt_u64(&doc, "SECONDS_PER_SLOT")? {
                Some(s) => s
                    .checked_mul(1000)
                    .ok_or_else(|| unsupported("SECONDS_PER_SLOT", s, "overflows milliseconds"))?,
                None => match preset {
                    Preset::Mainnet => 12_000,
                    Preset::Minimal => 6_000,
                },
            },
        };
        let max_payload_size = match opt_u64(&doc, "MAX_PAYLOAD_SIZE")? {
            Some(v) => v,
            None => u64_or(&doc, "GOSSIP_MAX_SIZE", DEFAULT_MAX_PAYLOAD_SIZE)?,
        };

        let config = ChainConfig {
            config_name,
            preset,
            forks,
            blob_schedule,
            slot_duration_ms,
            max_payload_size,
            max_request_blocks: u64_or(&doc, "MAX_REQUEST_BLOCKS", 1024)?,
            max_request_blocks_deneb: u64_or(&doc, "MAX_REQUEST_BLOCKS_DENEB", 128)?,
            max_request_payloads: u64_or(&doc, "MAX_REQUEST_PAYLOADS", 128)?,
            max_blobs_per_block: u64_or(&doc, "MAX_BLOBS_PER_BLOCK", 6)?,
            max_blobs_per_block_electra: u64_or(&doc, "MAX_BLOBS_PER_BLOCK_ELECTRA", 9)?,
            blob_sidecar_subnet_count: u64_or(&doc, "BLOB_SIDECAR_SUBNET_COUNT", 6)?,
            blob_sidecar_subnet_count_electra: u64_or(
                &doc,
                "BLOB_SIDECAR_SUBNET_COUNT_ELECTRA",
                9,
            )?,
            data_column_sidecar_subnet_count: u64_or(
                &doc,
                "DATA_COLUMN_SIDECAR_SUBNET_COUNT",
                128,
            )?,
            attestation_subnet_count: u64_or(&doc, "ATTESTATION_SUBNET_COUNT", 64)?,
            epochs_per_subnet_subscription: u64_or(&doc, "EPOCHS_PER_SUBNET_SUBSCRIPTION", 256)?,
            attestation_propagation_slot_range: u64_or(
                &doc,
                "ATTESTATION_PROPAGATION_SLOT_RANGE",
                32,
            )?,
            maximum_gossip_clock_disparity_ms: u64_or(&doc, "MAXIMUM_GOSSIP_CLOCK_DISPARITY", 500)?,
            subnets_per_node: u64_or(&doc, "SUBNETS_PER_NODE", 2)?,
            message_domain_valid_snappy: bytes4_or(
                &doc,
                "MESSAGE_DOMAIN_VALID_SNAPPY",
                [1, 0, 0, 0],
            )?,
            message_domain_invalid_snappy: bytes4_or(
                &doc,
                "MESSAGE_DOMAIN_INVALID_SNAPPY",
                [0; 4],
            )?,
            min_epochs_for_blob_sidecars_requests: u64_or(
                &doc,
                "MIN_EPOCHS_FOR_BLOB_SIDECARS_REQUESTS",
                4096,
            )?,
            min_epochs_for_data_column_sidecars_requests: u64_or(
                &doc,
                "MIN_EPOCHS_FOR_DATA_COLUMN_SIDECARS_REQUESTS",
                4096,
            )?,
            min_validator_withdrawability_delay: u64_or(
                &doc,
                "MIN_VALIDATOR_WITHDRAWABILITY_DELAY",
                256,
            )?,
            churn_limit_quotient: u64_or(&doc, "CHURN_LIMIT_QUOTIENT", 65536)?,
        };
        if let Some(n) = opt_u64(&doc, "NUMBER_OF_COLUMNS")?
            && n != NUMBER_OF_COLUMNS
        {
            return Err(unsupported(
                "NUMBER_OF_COLUMNS",
                n,
                "both presets fix it at 128",
            ));
        }
        config.validate()?;
        Ok(config)
    }

    /// Check the invariants every other function relies on: fork epochs in order, distinct
    /// versions, blob schedule epochs distinct and counts within `MAX_BLOB_COMMITMENTS_PER_BLOCK`,
    /// request limits within the SSZ types' bounds, subnet counts usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.forks[0].epoch != 0 || self.forks[0].version.is_none() {
            return Err(ConfigError::Missing("GENESIS_FORK_VERSION"));
        }
        for pair in Fork::ALL.windows(2) {
            let (a, b) = (self.forks[pair[0].index()], self.forks[pair[1].index()]);
            if b.epoch < a.epoch {
                return Err(ConfigError::ForkOrder {
                    earlier: pair[0],
                    earlier_epoch: a.epoch,
                    later: pair[1],
                    later_epoch: b.epoch,
                });
            }
        }
        for (i, a) in Fork::ALL.iter().enumerate() {
            let params = self.forks[a.index()];
            if params.epoch != FAR_FUTURE_EPOCH && params.version.is_none() {
                return Err(ConfigError::Missing("the version of a scheduled fork"));
            }
            for b in &Fork::ALL[i + 1..] {
                let other = self.forks[b.index()].version;
                if params.version.is_some() && params.version == other {
                    return Err(ConfigError::DuplicateVersion(*a, *b));
                }
            }
        }
        for pair in self.blob_schedule.windows(2) {
            if pair[0].epoch == pair[1].epoch {
                return Err(ConfigError::DuplicateBlobEpoch(pair[0].epoch));
            }
            if pair[1].epoch < pair[0].epoch {
                return Err(unsupported(
                    "BLOB_SCHEDULE",
                    pair[1].epoch,
                    "entries are not sorted by epoch",
                ));
            }
        }
        for bp in &self.blob_schedule {
            if bp.max_blobs_per_block > MAX_BLOB_COMMITMENTS_PER_BLOCK {
                return Err(unsupported(
                    "BLOB_SCHEDULE[].MAX_BLOBS_PER_BLOCK",
                    bp.max_blobs_per_block,
                    "above MAX_BLOB_COMMITMENTS_PER_BLOCK (4096)",
                ));
            }
        }
        let checks: [(&'static str, u64, u64, u64, &'static str); 12] = [
            (
                "MAX_PAYLOAD_SIZE",
                self.max_payload_size,
                1,
                MAX_MAX_PAYLOAD_SIZE,
                "must be 1 byte to 1 GiB",
            ),
            (
                "MAX_REQUEST_BLOCKS",
                self.max_request_blocks,
                1,
                ssz_caps::BLOCK_ROOTS,
                "must be 1..=1024 (the BeaconBlockRoots SSZ limit)",
            ),
            (
                "MAX_REQUEST_BLOCKS_DENEB",
                self.max_request_blocks_deneb,
                1,
                ssz_caps::COLUMN_IDENTIFIERS.min(self.max_request_blocks),
                "must be 1..=min(128, MAX_REQUEST_BLOCKS) (the DataColumnsByRootIdentifiers SSZ limit)",
            ),
            (
                "MAX_REQUEST_PAYLOADS",
                self.max_request_payloads,
                1,
                ssz_caps::PAYLOAD_ROOTS,
                "must be 1..=128 (the ExecutionPayloadEnvelopeRoots SSZ limit)",
            ),
            (
                "MAX_BLOBS_PER_BLOCK",
                self.max_blobs_per_block,
                0,
                MAX_BLOB_COMMITMENTS_PER_BLOCK,
                "above MAX_BLOB_COMMITMENTS_PER_BLOCK (4096)",
            ),
            (
                "MAX_BLOBS_PER_BLOCK_ELECTRA",
                self.max_blobs_per_block_electra,
                0,
                MAX_BLOB_COMMITMENTS_PER_BLOCK,
                "above MAX_BLOB_COMMITMENTS_PER_BLOCK (4096)",
            ),
            (
                "BLOB_SIDECAR_SUBNET_COUNT",
                self.blob_sidecar_subnet_count,
                1,
                MAX_BLOB_COMMITMENTS_PER_BLOCK,
                "must be 1..=4096",
            ),
            (
                "BLOB_SIDECAR_SUBNET_COUNT_ELECTRA",
                self.blob_sidecar_subnet_count_electra,
                1,
                MAX_BLOB_COMMITMENTS_PER_BLOCK,
                "must be 1..=4096",
            ),
            (
                "DATA_COLUMN_SIDECAR_SUBNET_COUNT",
                self.data_column_sidecar_subnet_count,
                1,
                NUMBER_OF_COLUMNS,
                "must be 1..=NUMBER_OF_COLUMNS (128)",
            ),
            (
                "ATTESTATION_SUBNET_COUNT",
                self.attestation_subnet_count,
                64,
                64,
                "must be 64 (MetaData.attnets is a Bitvector[64])",
            ),
            (
                "SLOT_DURATION_MS",
                self.slot_duration_ms,
                1,
                u64::MAX,
                "must not be 0",
            ),
            (
                "EPOCHS_PER_SUBNET_SUBSCRIPTION",
                self.epochs_per_subnet_subscription,
                1,
                u64::MAX,
                "must not be 0",
            ),
        ];
        for (key, value, min, max, reason) in checks {
            if value < min || value > max {
                return Err(unsupported(key, value, reason));
            }
        }
        let blob_ids = self.max_request_blocks_deneb.saturating_mul(
            self.max_blobs_per_block
                .max(self.max_blobs_per_block_electra),
        );
        if blob_ids > ssz_caps::BLOB_IDENTIFIERS {
            return Err(unsupported(
                "MAX_BLOBS_PER_BLOCK_ELECTRA",
                self.max_blobs_per_block_electra,
                "MAX_REQUEST_BLOCKS_DENEB × max blobs exceeds the BlobIdentifiers SSZ limit (1152)",
            ));
        }
        if self.message_domain_valid_snappy == self.message_domain_invalid_snappy {
            return Err(unsupported(
                "MESSAGE_DOMAIN_VALID_SNAPPY",
                u64::from(u32::from_le_bytes(self.message_domain_valid_snappy)),
                "equals MESSAGE_DOMAIN_INVALID_SNAPPY",
            ));
        }
        Ok(())
    }

    /// A fork's version and epoch.
    pub fn fork(&self, fork: Fork) -> ForkParams {
        self.forks[fork.index()]
    }

    /// `compute_fork_version`'s fork: the last fork whose epoch is at or before `epoch`.
    pub fn fork_at(&self, epoch: Epoch) -> Fork {
        Fork::ALL
            .iter()
            .rev()
            .copied()
            .find(|f| {
                let e = self.forks[f.index()].epoch;
                e != FAR_FUTURE_EPOCH && e <= epoch
            })
            .unwrap_or(Fork::Phase0)
    }

    /// Whether `fork` is scheduled (its epoch is not `FAR_FUTURE_EPOCH`).
    pub fn is_scheduled(&self, fork: Fork) -> bool {
        self.forks[fork.index()].epoch != FAR_FUTURE_EPOCH
    }

    /// `get_blob_parameters(epoch)` (Fulu): the latest `BLOB_SCHEDULE` entry at or before
    /// `epoch`, else `(ELECTRA_FORK_EPOCH, MAX_BLOBS_PER_BLOCK_ELECTRA)`.
    pub fn blob_parameters(&self, epoch: Epoch) -> BlobParameters {
        self.blob_schedule
            .iter()
            .rev()
            .find(|b| b.epoch <= epoch)
            .copied()
            .unwrap_or(BlobParameters {
                epoch: self.forks[Fork::Electra.index()].epoch,
                max_blobs_per_block: self.max_blobs_per_block_electra,
            })
    }

    /// Blobs allowed per block at `epoch` in `fork`: Deneb's and Electra's config values, the
    /// blob schedule from Fulu on.
    pub fn max_blobs_per_block(&self, fork: Fork, epoch: Epoch) -> u64 {
        match fork {
            Fork::Phase0 | Fork::Altair | Fork::Bellatrix | Fork::Capella => 0,
            Fork::Deneb => self.max_blobs_per_block,
            Fork::Electra => self.max_blobs_per_block_electra,
            Fork::Fulu | Fork::Gloas => self.blob_parameters(epoch).max_blobs_per_block,
        }
    }

    /// `compute_min_epochs_for_block_requests()`:
    /// `MIN_VALIDATOR_WITHDRAWABILITY_DELAY + CHURN_LIMIT_QUOTIENT // 2`.
    pub fn min_epochs_for_block_requests(&self) -> u64 {
        self.min_validator_withdrawability_delay
            .saturating_add(self.churn_limit_quotient / 2)
    }

    /// Gossipsub's `seen_ttl` in milliseconds: `SLOT_DURATION_MS * SLOTS_PER_EPOCH * 2`.
    pub fn seen_ttl_ms(&self) -> u64 {
        self.slot_duration_ms
            .saturating_mul(self.preset.slots_per_epoch())
            .saturating_mul(2)
    }

    /// The epoch of `slot`.
    pub fn epoch_at_slot(&self, slot: u64) -> Epoch {
        slot / self.preset.slots_per_epoch()
    }
}

/// A network with a built-in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Ethereum mainnet.
    Mainnet,
    /// The Sepolia testnet.
    Sepolia,
    /// The Hoodi testnet.
    Hoodi,
    /// The spec's minimal config (no genesis of its own: give a genesis validators root).
    Minimal,
}

impl Network {
    /// Every built-in network.
    pub const ALL: [Network; 4] = [
        Network::Mainnet,
        Network::Sepolia,
        Network::Hoodi,
        Network::Minimal,
    ];

    /// Name, as accepted by [`Network::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Sepolia => "sepolia",
            Network::Hoodi => "hoodi",
            Network::Minimal => "minimal",
        }
    }

    /// Look a network up by name.
    pub fn from_name(name: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.name() == name)
    }

    /// The embedded config text (our own file in the spec's format; values from the published
    /// configs, see the comments in `crates/eth/configs/`).
    pub fn config_text(self) -> &'static str {
        match self {
            Network::Mainnet => include_str!("../configs/mainnet.yaml"),
            Network::Sepolia => include_str!("../configs/sepolia.yaml"),
            Network::Hoodi => include_str!("../configs/hoodi.yaml"),
            Network::Minimal => include_str!("../configs/minimal.yaml"),
        }
    }

    /// The parsed config.
    pub fn config(self) -> ChainConfig {
        match ChainConfig::from_yaml(self.config_text()) {
            Ok(c) => c,
            // The embedded texts are checked by the tests; reaching this is a build defect.
            Err(e) => unreachable!("built-in config {} is invalid: {e}", self.name()),
        }
    }

    /// The genesis time (Unix seconds) of a public network (`None` for `minimal`).
    pub fn genesis_time(self) -> Option<u64> {
        match self {
            // 2020-12-01 12:00:23 UTC.
            Network::Mainnet => Some(1_606_824_023),
            // 2022-06-20 14:00:00 UTC.
            Network::Sepolia => Some(1_655_733_600),
            // 2025-03-17 12:10:00 UTC.
            Network::Hoodi => Some(1_742_213_400),
            Network::Minimal => None,
        }
    }

    /// The genesis validators root of a public network (`None` for `minimal`, which has no
    /// single genesis).
    pub fn genesis_validators_root(self) -> Option<Root> {
        let hex: &[u8] = match self {
            Network::Mainnet => b"4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
            Network::Sepolia => b"d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
            Network::Hoodi => b"212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
            Network::Minimal => return None,
        };
        let mut root = [0u8; 32];
        data_encoding::HEXLOWER.decode_mut(hex, &mut root).ok()?;
        Some(root)
    }
}
