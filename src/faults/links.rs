//! [`LinkFaults`]: which links between machines are cut by a partition or held, now. One
//! implementation for every mode: the simulated network asks it of every transmission, and so
//! does each machine process of its own (a container's or an instance's), which is how the
//! partitions and holds of a test or a scenario reach real machines.

use rustc_hash::FxHashMap;

use super::CutId;
use crate::messages::MachineId;

/// One partition in force: which group each of its machines is in.
#[derive(Debug, Clone)]
struct Cut {
    id: CutId,
    group_of: FxHashMap<MachineId, usize>,
}

impl Cut {
    fn separates(&self, a: MachineId, b: MachineId) -> bool {
        match (self.group_of.get(&a), self.group_of.get(&b)) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        }
    }
}

/// The partitions and holds in force.
#[derive(Debug, Clone, Default)]
pub struct LinkFaults {
    /// The partitions in force, in the order they were made.
    cuts: Vec<Cut>,
    /// Links held (each pair with the lower machine first), with how many holds; looked up
    /// only, never iterated.
    holds: FxHashMap<(MachineId, MachineId), u32>,
}

/// The key of the link between `a` and `b`, whichever way.
fn pair(a: MachineId, b: MachineId) -> (MachineId, MachineId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl LinkFaults {
    /// Puts partition `id` in force (replacing one of the same id): machines in different
    /// `groups` cannot reach each other.
    pub fn partition(&mut self, id: CutId, groups: &[Vec<MachineId>]) {
        self.repair(id);
        let group_of = groups
            .iter()
            .enumerate()
            .flat_map(|(group, members)| members.iter().map(move |m| (*m, group)))
            .collect();
        self.cuts.push(Cut { id, group_of });
    }

    /// Ends partition `id` (nothing if it is not in force).
    pub fn repair(&mut self, id: CutId) {
        self.cuts.retain(|cut| cut.id != id);
    }

    /// Holds the link between `a` and `b`, both ways (holds nest).
    pub fn hold(&mut self, a: MachineId, b: MachineId) {
        *self.holds.entry(pair(a, b)).or_default() += 1;
    }

    /// Ends one hold of the link between `a` and `b`; whether the link is free now.
    pub fn release(&mut self, a: MachineId, b: MachineId) -> bool {
        let key = pair(a, b);
        match self.holds.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.holds.remove(&key);
                true
            }
            None => true,
        }
    }

    /// Whether a partition in force separates `from` and `to`.
    pub fn is_cut(&self, from: MachineId, to: MachineId) -> bool {
        !self.cuts.is_empty() && self.cuts.iter().any(|cut| cut.separates(from, to))
    }

    /// Whether what `from` sends `to` is held now.
    pub fn is_held(&self, from: MachineId, to: MachineId) -> bool {
        !self.holds.is_empty() && from != to && self.holds.contains_key(&pair(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_partitions_cut_between_groups_until_repaired_and_holds_nest_both_ways() {
        let (m0, m1, m2, m3) = (MachineId(0), MachineId(1), MachineId(2), MachineId(3));
        let mut links = LinkFaults::default();
        links.partition(CutId(0), &[vec![m0], vec![m1, m2]]);
        assert!(links.is_cut(m0, m1) && links.is_cut(m2, m0));
        assert!(!links.is_cut(m1, m2), "same group");
        assert!(!links.is_cut(m0, m3), "m3 is in no group");
        links.repair(CutId(0));
        assert!(!links.is_cut(m0, m1));

        links.hold(m1, m2);
        links.hold(m2, m1);
        assert!(links.is_held(m1, m2) && links.is_held(m2, m1));
        assert!(!links.release(m1, m2), "one hold is left");
        assert!(links.release(m2, m1));
        assert!(!links.is_held(m1, m2));
    }
}
