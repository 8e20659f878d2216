//! Where a route's `parentRefs` can point: Gateways of our classes and the ListenerSets they
//! took in. Shared by every route kind.

use crate::gateway::GatewayState;
use std::collections::BTreeMap;
use trellis_model::{ObjectKey, ParentReference, GATEWAY_GROUP};

pub struct ParentIndex {
    gateways: BTreeMap<ObjectKey, usize>,
    /// ListenerSet → (gateway, set index).
    sets: BTreeMap<ObjectKey, (usize, usize)>,
}

impl ParentIndex {
    pub fn new(gateways: &[GatewayState]) -> Self {
        let sets = gateways
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| {
                g.listener_sets
                    .iter()
                    .enumerate()
                    .map(move |(si, s)| (s.key.clone(), (gi, si)))
            })
            .collect();
        ParentIndex {
            gateways: gateways
                .iter()
                .enumerate()
                .map(|(i, g)| (g.key.clone(), i))
                .collect(),
            sets,
        }
    }

    /// The gateway index and listener origin (`None`: the Gateway's own listeners, `Some(i)`:
    /// its i-th ListenerSet's) a parentRef of a route in `route_ns` names, when it is ours.
    pub fn resolve(
        &self,
        pref: &ParentReference,
        route_ns: &str,
    ) -> Option<(usize, Option<usize>)> {
        let group = pref.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = pref.kind.as_deref().unwrap_or("Gateway");
        let key = ObjectKey::new(
            pref.namespace.as_deref().unwrap_or(route_ns),
            pref.name.as_str(),
        );
        match (group, kind) {
            (GATEWAY_GROUP, "Gateway") => self.gateways.get(&key).map(|&gi| (gi, None)),
            (GATEWAY_GROUP, "ListenerSet") => self.sets.get(&key).map(|&(gi, si)| (gi, Some(si))),
            _ => None,
        }
    }
}
