//! The pending-inbound table: every inbound connection past `accept` whose
//! upgrade has not finished, with the policy that keeps one source from
//! holding the slots: per-IP and per-subnet caps at admission, and, when the
//! table is full, eviction of the oldest connection that has not completed
//! its security handshake, from the source holding the most slots.
//!
//! It is plain data (no I/O, no clock reads): the host calls it under a lock
//! and acts on the answers (refuse, abort the evicted task).

use std::collections::HashMap;
use std::net::IpAddr;

use plexus_conn::Stage;

/// The bounds of the table (from [`HostLimits`](crate::HostLimits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingLimits {
    pub(crate) max: usize,
    pub(crate) per_ip: usize,
    pub(crate) per_ipv4_24: usize,
    pub(crate) per_ipv6_64: usize,
}

/// The subnet a source belongs to for the subnet cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subnet {
    V4([u8; 3]),
    V6([u8; 8]),
}

fn subnet(ip: IpAddr) -> Subnet {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Subnet::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet(IpAddr::V4(v4)),
            None => {
                let mut p = [0u8; 8];
                p.copy_from_slice(&v6.octets()[..8]);
                Subnet::V6(p)
            }
        },
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its IP holds `per_ip` slots (`pending_ip_cap`).
    IpCap,
    /// Its /24 (IPv4) or /64 (IPv6) holds its cap (`pending_subnet_cap`).
    SubnetCap,
    /// The table is full and every entry completed its security handshake
    /// (`pending_cap`).
    Full,
}

impl Refusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::IpCap => "pending_ip_cap",
            Refusal::SubnetCap => "pending_subnet_cap",
            Refusal::Full => "pending_cap",
        }
    }
}

/// One pending connection.
#[derive(Debug)]
pub(crate) struct Entry<A> {
    source: Option<IpAddr>,
    /// Admission order (smaller is older).
    seq: u64,
    pub(crate) stage: Stage,
    /// What the host needs to stop it (its task's abort handle).
    pub(crate) handle: Option<A>,
}

/// What [`PendingTable::admit`] did.
#[derive(Debug)]
pub(crate) struct Admitted<A> {
    /// The new entry's id.
    pub(crate) id: u64,
    /// An entry evicted to make room (removed from the table already).
    pub(crate) evicted: Option<Entry<A>>,
}

/// The table. `A` is what stops an entry's work (a task abort handle).
#[derive(Debug)]
pub(crate) struct PendingTable<A> {
    limits: PendingLimits,
    entries: HashMap<u64, Entry<A>>,
    per_ip: HashMap<IpAddr, usize>,
    per_subnet: HashMap<Subnet, usize>,
    next: u64,
}

fn inc<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: K) {
    *m.entry(k).or_insert(0) += 1;
}

fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = m.get_mut(k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(k);
        }
    }
}

impl<A> PendingTable<A> {
    pub(crate) fn new(limits: PendingLimits) -> Self {
        PendingTable {
            limits,
            entries: HashMap::new(),
            per_ip: HashMap::new(),
            per_subnet: HashMap::new(),
            next: 1,
        }
    }

    /// Entries in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Admit a connection from `source` (None: the transport's address has
    /// no IP; only the global bound applies) in stage
    /// [`Stage::AwaitingHeader`]: refused when its IP or subnet is at its
    /// cap; when the table is full the oldest entry not yet secured, from the
    /// source holding the most slots, is evicted to make room; refused when
    /// there is none.
    pub(crate) fn admit(&mut self, source: Option<IpAddr>) -> Result<Admitted<A>, Refusal> {
        if let Some(ip) = source {
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_ip.max(1) {
                return Err(Refusal::IpCap);
            }
            let sn = subnet(ip);
            let cap = match sn {
                Subnet::V4(_) => self.limits.per_ipv4_24,
                Subnet::V6(_) => self.limits.per_ipv6_64,
            };
            if self.per_subnet.get(&sn).copied().unwrap_or(0) >= cap.max(1) {
                return Err(Refusal::SubnetCap);
            }
        }
        let mut evicted = None;
        if self.entries.len() >= self.limits.max.max(1) {
            let victim = self.victim().ok_or(Refusal::Full)?;
            evicted = self.remove(victim);
        }
        let id = self.next;
        self.next += 1;
        if let Some(ip) = source {
            inc(&mut self.per_ip, ip);
            inc(&mut self.per_subnet, subnet(ip));
        }
        self.entries.insert(
            id,
            Entry {
                source,
                seq: id,
                stage: Stage::AwaitingHeader,
                handle: None,
            },
        );
        Ok(Admitted { id, evicted })
    }

    /// The entry to evict: not secured; from the source holding the most
    /// slots (an entry without IP counts as a source of one); oldest first.
    fn victim(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.stage.is_secured())
            .max_by_key(|(_, e)| {
                let held = e
                    .source
                    .map_or(1, |ip| self.per_ip.get(&ip).copied().unwrap_or(0));
                (held, std::cmp::Reverse(e.seq))
            })
            .map(|(id, _)| *id)
    }

    /// Attach the handle that stops entry `id`'s work.
    pub(crate) fn set_handle(&mut self, id: u64, handle: A) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.handle = Some(handle);
        }
    }

    /// Move entry `id` to `stage`. Returns the previous stage, or `None` when
    /// the entry is gone (evicted): its upgrade must stop.
    pub(crate) fn set_stage(&mut self, id: u64, stage: Stage) -> Option<Stage> {
        let e = self.entries.get_mut(&id)?;
        Some(std::mem::replace(&mut e.stage, stage))
    }

    /// Remove entry `id` (its upgrade ended, or it is evicted).
    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry<A>> {
        let e = self.entries.remove(&id)?;
        if let Some(ip) = e.source {
            dec(&mut self.per_ip, &ip);
            dec(&mut self.per_subnet, &subnet(ip));
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize, per_ip: usize, per_subnet: usize) -> PendingTable<()> {
        PendingTable::new(PendingLimits {
            max,
            per_ip,
            per_ipv4_24: per_subnet,
            per_ipv6_64: per_subnet,
        })
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn per_ip_and_per_subnet_caps_refuse_before_the_global_bound() {
        let mut t = table(100, 2, 3);
        t.admit(ip("10.0.0.1")).unwrap();
        t.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.0.0.1")).unwrap_err(), Refusal::IpCap);
        t.admit(ip("10.0.0.2")).unwrap();
        // The /24 holds 3.
        assert_eq!(t.admit(ip("10.0.0.3")).unwrap_err(), Refusal::SubnetCap);
        t.admit(ip("10.0.1.3")).unwrap();
        // IPv6: the /64 is the subnet; an IPv4-mapped address counts as IPv4.
        t.admit(ip("2001:db8::1")).unwrap();
        t.admit(ip("2001:db8::2")).unwrap();
        t.admit(ip("2001:db8::3")).unwrap();
        assert_eq!(t.admit(ip("2001:db8::4")).unwrap_err(), Refusal::SubnetCap);
        t.admit(ip("2001:db8:0:1::4")).unwrap();
        assert_eq!(
            t.admit(ip("::ffff:10.0.0.9")).unwrap_err(),
            Refusal::SubnetCap
        );
        // Removing frees the source's slots.
        let n = t.len();
        t.remove(1).unwrap();
        assert_eq!(t.len(), n - 1);
        t.admit(ip("10.0.0.1")).unwrap();
        // No IP: only the global bound.
        for _ in 0..10 {
            t.admit(None).unwrap();
        }
    }

    #[test]
    fn a_full_table_evicts_the_oldest_unsecured_entry_of_the_biggest_source() {
        let mut t = table(5, 3, 10);
        let a1 = t.admit(ip("10.0.0.1")).unwrap().id;
        let b1 = t.admit(ip("10.0.1.1")).unwrap().id;
        let a2 = t.admit(ip("10.0.0.1")).unwrap().id;
        t.admit(ip("10.0.0.1")).unwrap();
        let c1 = t.admit(ip("10.0.2.1")).unwrap().id;
        // a holds 3: its oldest goes, though b1 is older.
        let n = t.admit(ip("10.0.3.1")).unwrap();
        assert_eq!(n.evicted.unwrap().seq, a1);
        assert_eq!(t.len(), 5);
        // a holds 2 now, the others 1: a's next oldest.
        assert_eq!(t.admit(ip("10.0.4.1")).unwrap().evicted.unwrap().seq, a2);
        // All hold one: the oldest, b1.
        assert_eq!(t.admit(ip("10.0.5.1")).unwrap().evicted.unwrap().seq, b1);
        // Secured entries are never evicted: secure all but c1; c1 goes.
        let ids: Vec<u64> = t.entries.keys().copied().collect();
        for id in ids {
            if id != c1 {
                assert_eq!(
                    t.set_stage(id, Stage::Securing),
                    Some(Stage::AwaitingHeader)
                );
                t.set_stage(id, Stage::Muxing).unwrap();
            }
        }
        let n = t.admit(ip("10.0.6.1")).unwrap();
        assert_eq!(n.evicted.unwrap().seq, c1);
        assert_eq!(t.set_stage(c1, Stage::Muxing), None, "evicted: gone");
        // The newcomer is not secured: it is the only candidate now.
        let newest = n.id;
        assert_eq!(
            t.admit(ip("10.0.7.1")).unwrap().evicted.unwrap().seq,
            newest
        );
        // Everything secured: the table refuses.
        let last = t.entries.keys().copied().max().unwrap();
        t.set_stage(last, Stage::Muxing).unwrap();
        assert_eq!(t.admit(ip("10.0.8.1")).unwrap_err(), Refusal::Full);
        assert!(t.entries.values().all(|e| e.stage.is_secured()));
    }
}
