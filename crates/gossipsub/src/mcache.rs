//! The message cache: validated messages of the last `history_length` heartbeats, served to
//! IWANT and advertised by IHAVE from the newest `history_gossip` windows.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use plexus_core::PeerId;

use crate::types::{MessageId, TopicHash};

#[derive(Debug)]
struct Entry {
    topic: TopicHash,
    /// The whole RPC frame carrying the message, shared with every send.
    frame: Bytes,
    /// IWANT replies per peer.
    served: HashMap<PeerId, u32>,
}

#[derive(Debug)]
pub(crate) struct MessageCache {
    msgs: HashMap<MessageId, Entry>,
    windows: VecDeque<Vec<MessageId>>,
    gossip: usize,
}

impl MessageCache {
    pub(crate) fn new(history: usize, gossip: usize) -> Self {
        let mut windows = VecDeque::with_capacity(history);
        for _ in 0..history.max(1) {
            windows.push_back(Vec::new());
        }
        MessageCache {
            msgs: HashMap::new(),
            windows,
            gossip,
        }
    }

    /// Remember a message (once).
    pub(crate) fn put(&mut self, id: MessageId, topic: TopicHash, frame: Bytes) {
        if self.msgs.contains_key(&id) {
            return;
        }
        self.msgs.insert(
            id.clone(),
            Entry {
                topic,
                frame,
                served: HashMap::new(),
            },
        );
        if let Some(w) = self.windows.front_mut() {
            w.push(id);
        }
    }

    /// The topic of a cached message.
    pub(crate) fn topic_of(&self, id: &MessageId) -> Option<&TopicHash> {
        self.msgs.get(id).map(|e| &e.topic)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: &MessageId) -> bool {
        self.msgs.contains_key(id)
    }

    /// The frame for an IWANT from `peer`, unless it was already served `max` times.
    pub(crate) fn get_for(&mut self, id: &MessageId, peer: PeerId, max: u32) -> Option<Bytes> {
        let e = self.msgs.get_mut(id)?;
        let n = e.served.entry(peer).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(e.frame.clone())
    }

    /// Ids of the gossip windows for `topic`, newest first.
    pub(crate) fn gossip_ids(&self, topic: &TopicHash) -> Vec<MessageId> {
        self.windows
            .iter()
            .take(self.gossip)
            .flatten()
            .filter(|id| self.msgs.get(*id).is_some_and(|e| &e.topic == topic))
            .cloned()
            .collect()
    }

    /// Open a new window, dropping the oldest.
    pub(crate) fn shift(&mut self) {
        if let Some(old) = self.windows.pop_back() {
            for id in old {
                self.msgs.remove(&id);
            }
        }
        self.windows.push_front(Vec::new());
    }

    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::new(vec![n])
    }

    #[test]
    fn windows_gossip_and_retransmission() {
        let t: TopicHash = "t".into();
        let other: TopicHash = "u".into();
        let mut c = MessageCache::new(3, 2);
        c.put(id(1), t.clone(), Bytes::from_static(b"1"));
        c.put(id(9), other.clone(), Bytes::from_static(b"9"));
        c.shift();
        c.put(id(2), t.clone(), Bytes::from_static(b"2"));
        assert_eq!(c.gossip_ids(&t), vec![id(2), id(1)]);
        c.shift();
        assert_eq!(c.gossip_ids(&t), vec![id(2)], "only the gossip windows");
        assert!(c.contains(&id(1)), "still served from history");
        let p = PeerId::random();
        assert!(c.get_for(&id(1), p, 2).is_some());
        assert!(c.get_for(&id(1), p, 2).is_some());
        assert!(c.get_for(&id(1), p, 2).is_none(), "retransmission cap");
        assert!(c.get_for(&id(1), PeerId::random(), 2).is_some());
        c.shift();
        assert!(!c.contains(&id(1)));
        assert!(c.contains(&id(2)));
        assert_eq!(c.len(), 1);
    }
}
