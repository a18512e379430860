//! The per-peer send queue: four priority classes, byte caps, timeouts, and cancellation by
//! message id (IDONTWANT). Frames are shared `Bytes`: a message is encoded once for all
//! peers.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::config::QueueConfig;
use crate::types::MessageId;

/// A priority class of the send queue, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Subscriptions, GRAFT, PRUNE, IHAVE, IWANT, IDONTWANT.
    Control = 0,
    /// Our own publishes: never dropped once queued.
    Publish = 1,
    /// Messages forwarded for others.
    Forward = 2,
    /// Replies to IWANT.
    Gossip = 3,
}

impl Class {
    /// Every class, highest priority first.
    pub const ALL: [Class; 4] = [
        Class::Control,
        Class::Publish,
        Class::Forward,
        Class::Gossip,
    ];

    /// A short name for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Control => "control",
            Class::Publish => "publish",
            Class::Forward => "forward",
            Class::Gossip => "gossip",
        }
    }
}

#[derive(Debug)]
struct Item {
    frame: Bytes,
    id: Option<MessageId>,
    queued: Instant,
}

/// Why a frame was not queued or was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The class is over its byte cap.
    Full,
}

/// One peer's queue.
#[derive(Debug, Default)]
pub(crate) struct PeerQueue {
    q: [VecDeque<Item>; 4],
    bytes: [usize; 4],
    /// Frames dropped per class since the last [`PeerQueue::take_drops`].
    drops: [u64; 4],
}

impl PeerQueue {
    fn cap(cfg: &QueueConfig, class: Class, mandatory: bool) -> usize {
        match class {
            Class::Control if mandatory => cfg.max_control_bytes.saturating_mul(2),
            Class::Control => cfg.max_control_bytes,
            Class::Publish => cfg.max_publish_bytes,
            Class::Forward => cfg.max_forward_bytes,
            Class::Gossip => cfg.max_gossip_bytes,
        }
    }

    /// Queue a frame. Mandatory control (subscriptions, GRAFT, PRUNE) gets twice the control
    /// cap; anything over its cap is refused and counted as a drop of its class.
    pub(crate) fn push(
        &mut self,
        cfg: &QueueConfig,
        class: Class,
        frame: Bytes,
        id: Option<MessageId>,
        mandatory: bool,
        now: Instant,
    ) -> Result<(), Refused> {
        let c = class as usize;
        if !self.q[c].is_empty() && self.bytes[c] + frame.len() > Self::cap(cfg, class, mandatory) {
            self.drops[c] += 1;
            return Err(Refused::Full);
        }
        self.bytes[c] += frame.len();
        self.q[c].push_back(Item {
            frame,
            id,
            queued: now,
        });
        Ok(())
    }

    /// Whether nothing is queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.q.iter().all(VecDeque::is_empty)
    }

    /// Drop forwards and gossip replies queued longer than their timeouts; returns how many
    /// were dropped.
    pub(crate) fn expire(&mut self, cfg: &QueueConfig, now: Instant) -> u64 {
        let mut n = 0;
        for (class, timeout) in [
            (Class::Forward, cfg.forward_timeout),
            (Class::Gossip, cfg.gossip_timeout),
        ] {
            let c = class as usize;
            while let Some(item) = self.q[c].front() {
                if now.saturating_duration_since(item.queued) < timeout {
                    break;
                }
                if let Some(item) = self.q[c].pop_front() {
                    self.bytes[c] -= item.frame.len();
                    self.drops[c] += 1;
                    n += 1;
                }
            }
        }
        n
    }

    /// The next frame to write, highest class first (after expiring stale ones), with its
    /// class.
    pub(crate) fn pop(
        &mut self,
        cfg: &QueueConfig,
        now: Instant,
    ) -> Option<(Class, Bytes, Option<MessageId>)> {
        self.expire(cfg, now);
        for class in Class::ALL {
            let c = class as usize;
            if let Some(item) = self.q[c].pop_front() {
                self.bytes[c] -= item.frame.len();
                return Some((class, item.frame, item.id));
            }
        }
        None
    }

    /// The length of the frame [`PeerQueue::pop`] would return (after expiring stale ones).
    pub(crate) fn peek_len(&mut self, cfg: &QueueConfig, now: Instant) -> Option<usize> {
        self.expire(cfg, now);
        Class::ALL
            .iter()
            .find_map(|c| self.q[*c as usize].front().map(|i| i.frame.len()))
    }

    /// Remove queued forwards and gossip replies of message `id` (an IDONTWANT arrived);
    /// returns how many. Own publishes stay: the peer asked before it knew we authored it,
    /// and removing them could lose a message nobody else has.
    pub(crate) fn cancel(&mut self, id: &MessageId) -> usize {
        let mut n = 0;
        for class in [Class::Forward, Class::Gossip] {
            let c = class as usize;
            let before = self.q[c].len();
            let mut freed = 0;
            self.q[c].retain(|item| {
                let keep = item.id.as_ref() != Some(id);
                if !keep {
                    freed += item.frame.len();
                }
                keep
            });
            self.bytes[c] -= freed;
            n += before - self.q[c].len();
        }
        n
    }

    /// Bytes queued per class.
    pub(crate) fn bytes(&self) -> [usize; 4] {
        self.bytes
    }

    /// Frames queued per class.
    pub(crate) fn lens(&self) -> [usize; 4] {
        [
            self.q[0].len(),
            self.q[1].len(),
            self.q[2].len(),
            self.q[3].len(),
        ]
    }

    /// Drops per class since the last call.
    pub(crate) fn take_drops(&mut self) -> [u64; 4] {
        std::mem::take(&mut self.drops)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cfg() -> QueueConfig {
        QueueConfig {
            max_control_bytes: 10,
            max_publish_bytes: 10,
            max_forward_bytes: 10,
            max_gossip_bytes: 10,
            forward_timeout: Duration::from_secs(1),
            gossip_timeout: Duration::from_secs(2),
        }
    }

    fn id(n: u8) -> Option<MessageId> {
        Some(MessageId::new(vec![n]))
    }

    #[test]
    fn priority_caps_timeouts_and_cancel() {
        let cfg = cfg();
        let t0 = Instant::now();
        let mut q = PeerQueue::default();
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        q.push(&cfg, Class::Gossip, b("g1"), id(1), false, t0)
            .unwrap();
        q.push(&cfg, Class::Forward, b("f1"), id(1), false, t0)
            .unwrap();
        q.push(&cfg, Class::Forward, b("f2"), id(2), false, t0)
            .unwrap();
        q.push(&cfg, Class::Publish, b("p1"), id(3), false, t0)
            .unwrap();
        q.push(&cfg, Class::Control, b("c1"), None, false, t0)
            .unwrap();
        // Over the forward cap (10 bytes): refused and counted.
        assert_eq!(
            q.push(&cfg, Class::Forward, b("ffffffffff"), id(4), false, t0),
            Err(Refused::Full)
        );
        // Mandatory control gets twice the cap.
        q.push(&cfg, Class::Control, b("cccccccccc"), None, true, t0)
            .unwrap();
        assert_eq!(
            q.cancel(&MessageId::new(vec![1])),
            2,
            "forward and gossip copies"
        );
        let order: Vec<_> = std::iter::from_fn(|| q.pop(&cfg, t0))
            .map(|(_, f, _)| f)
            .collect();
        assert_eq!(order, vec![b("c1"), b("cccccccccc"), b("p1"), b("f2")]);
        assert_eq!(q.take_drops(), [0, 0, 1, 0]);

        // Timeouts: forwards after 1 s, gossip after 2 s, publishes never.
        q.push(&cfg, Class::Forward, b("f"), id(5), false, t0)
            .unwrap();
        q.push(&cfg, Class::Gossip, b("g"), id(6), false, t0)
            .unwrap();
        q.push(&cfg, Class::Publish, b("p"), id(7), false, t0)
            .unwrap();
        assert_eq!(q.expire(&cfg, t0 + Duration::from_millis(1500)), 1);
        assert_eq!(q.lens(), [0, 1, 0, 1]);
        let later = t0 + Duration::from_secs(100);
        assert_eq!(q.pop(&cfg, later).map(|(c, _, _)| c), Some(Class::Publish));
        assert_eq!(q.pop(&cfg, later), None, "the gossip reply timed out");
        assert_eq!(q.bytes(), [0; 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_empty_class_takes_one_oversized_frame() {
        let cfg = cfg();
        let t0 = Instant::now();
        let mut q = PeerQueue::default();
        let big = Bytes::from(vec![0u8; 100]);
        q.push(&cfg, Class::Publish, big.clone(), id(1), false, t0)
            .unwrap();
        assert!(q.push(&cfg, Class::Publish, big, id(2), false, t0).is_err());
    }
}
