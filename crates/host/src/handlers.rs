//! The handler registry: the inbound protocols registered with
//! [`Host::handle`](crate::Host::handle), each with its bounded queue and its
//! per-peer count of open streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use plexus_core::PeerId;
use tokio::sync::mpsc;

use crate::error::AlreadyRegistered;
use crate::inner::Inner;
use crate::limits::HandlerOpts;
use crate::stream::{InboundStream, Incoming};

/// A registered inbound protocol.
pub(crate) struct Handler {
    pub(crate) id: u64,
    pub(crate) opts: HandlerOpts,
    pub(crate) tx: mpsc::Sender<InboundStream>,
    /// Open inbound streams per peer (entries removed at zero).
    pub(crate) open: Mutex<HashMap<PeerId, usize>>,
}

impl Handler {
    /// Take a per-peer slot, or `None` at `max_inbound_per_peer`.
    pub(crate) fn try_slot(self: &Arc<Self>, peer: PeerId) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(peer).or_insert(0);
        if *n >= self.opts.max_inbound_per_peer {
            if *n == 0 {
                open.remove(&peer);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            handler: self.clone(),
            peer,
        })
    }
}

/// One open inbound stream of (peer, protocol); released on drop.
pub(crate) struct Slot {
    handler: Arc<Handler>,
    peer: PeerId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.handler.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

impl Inner {
    /// Register `protocol` (already validated) with `opts`.
    pub(crate) fn register(
        self: &Arc<Self>,
        protocol: &str,
        opts: HandlerOpts,
    ) -> Result<Incoming, AlreadyRegistered> {
        let mut st = self.lock();
        if st.handlers.contains_key(protocol) {
            return Err(AlreadyRegistered(protocol.to_owned()));
        }
        let (tx, rx) = mpsc::channel(opts.backlog.max(1));
        let id = self.next_id();
        st.handlers.insert(
            protocol.to_owned(),
            Arc::new(Handler {
                id,
                opts,
                tx,
                open: Mutex::default(),
            }),
        );
        Ok(Incoming {
            protocol: protocol.to_owned(),
            id,
            rx,
            host: Arc::downgrade(self),
        })
    }

    /// Remove the handler of `protocol` if it is still registration `id`
    /// (its [`Incoming`] was dropped).
    pub(crate) fn unregister(&self, protocol: &str, id: u64) {
        let mut st = self.lock();
        if st.handlers.get(protocol).is_some_and(|h| h.id == id) {
            st.handlers.remove(protocol);
        }
    }

    /// The registered protocols, in no particular order.
    pub(crate) fn protocols(&self) -> Vec<String> {
        self.lock().handlers.keys().cloned().collect()
    }

    /// The handler of `protocol`, if registered.
    pub(crate) fn handler(&self, protocol: &str) -> Option<Arc<Handler>> {
        self.lock().handlers.get(protocol).cloned()
    }
}
