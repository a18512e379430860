//! Which topics to be subscribed to at an epoch: the current fork digest's, the next
//! digest's ahead of a fork, the previous digest's for a while after it. Pure: the service
//! applies the differences.

use std::collections::BTreeSet;

use plexus_eth::{Epoch, ForkDigest, ForkSchedule, GossipKind, GossipTopic};

/// When topics of neighbouring digests are joined and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionConfig {
    /// Subscribe to the next digest's topics this many epochs before it takes effect, so
    /// meshes exist when the first post-fork messages come. Default 2 (the spec says "in
    /// advance"; Lighthouse joins 2 epochs, Prysm 1 epoch before).
    pub subscribe_ahead_epochs: u64,
    /// Stay on the previous digest's topics this many epochs after a fork. Default 2 (the
    /// spec's value: late messages still arrive and peers must not be penalised for them).
    pub unsubscribe_after_epochs: u64,
}

impl Default for TransitionConfig {
    fn default() -> Self {
        TransitionConfig {
            subscribe_ahead_epochs: 2,
            unsubscribe_after_epochs: 2,
        }
    }
}

/// The digests whose topics a node follows at `epoch`, oldest first: the one in force, the
/// previous one within `unsubscribe_after_epochs` of the change, the next one within
/// `subscribe_ahead_epochs` of it. BPO digests count as forks here.
pub fn digests_at(schedule: &ForkSchedule, epoch: Epoch, t: TransitionConfig) -> Vec<ForkDigest> {
    let entries = schedule.entries();
    let Some(i) = entries.iter().rposition(|e| e.epoch <= epoch) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(3);
    if i > 0 && epoch < entries[i].epoch.saturating_add(t.unsubscribe_after_epochs) {
        out.push(entries[i - 1].digest);
    }
    out.push(entries[i].digest);
    if let Some(next) = entries.get(i + 1)
        && epoch.saturating_add(t.subscribe_ahead_epochs) >= next.epoch
    {
        out.push(next.digest);
    }
    out.dedup();
    out
}

/// The topics to be on at `epoch`: each followed digest crossed with the `kinds` the client
/// wants that exist at that digest's fork (a topic of a kind the fork does not have is
/// skipped: blob subnets after Fulu, columns before it).
pub fn topics_at(
    schedule: &ForkSchedule,
    epoch: Epoch,
    kinds: &BTreeSet<GossipKind>,
    t: TransitionConfig,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for digest in digests_at(schedule, epoch, t) {
        let Some(entry) = schedule.lookup(digest) else {
            continue;
        };
        for kind in kinds {
            if kind.exists_at(entry.fork, schedule.config()) {
                out.insert(GossipTopic::new(digest, *kind).to_string());
            }
        }
    }
    out
}

/// What to change to get from `current` to `wanted`: (subscribe, unsubscribe).
pub fn diff(current: &BTreeSet<String>, wanted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (
        wanted.difference(current).cloned().collect(),
        current.difference(wanted).cloned().collect(),
    )
}
