//! Gateway addresses: `spec.addresses` when usable, otherwise a stable address hashed from
//! `namespace/name` into the pool.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use trellis_model::{Gateway, ObjectKey};

/// What a Gateway gets from address assignment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressPlan {
    /// Addresses to bind (and to report in `status.addresses`).
    pub addresses: Vec<IpAddr>,
    /// An address of a type or form Trellis does not support → Accepted=False/UnsupportedAddress.
    pub unsupported: Option<String>,
    /// A well-formed address Trellis cannot serve on → Programmed=False/AddressNotUsable.
    pub unusable: Option<String>,
    /// The pool is exhausted → Programmed=False/AddressNotAssigned.
    pub unassigned: bool,
}

/// Whether the proxy can bind this address. Only loopback and the unspecified address qualify:
/// anything else may belong to another host.
fn usable(ip: &IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// Assigns addresses to every Gateway, in key order so the result is deterministic.
pub fn assign(
    gateways: &[(&ObjectKey, &Gateway)],
    pool: (Ipv4Addr, u8),
) -> BTreeMap<ObjectKey, AddressPlan> {
    let mut plans = BTreeMap::new();
    let mut taken: BTreeSet<IpAddr> = BTreeSet::new();
    let mut needs_pool = Vec::new();
    for (key, gw) in gateways {
        let mut plan = AddressPlan::default();
        let mut wants_pool = gw.spec.addresses.is_empty();
        for a in &gw.spec.addresses {
            let type_ = a.type_.as_deref().unwrap_or("IPAddress");
            if type_ != "IPAddress" {
                plan.unsupported
                    .get_or_insert_with(|| format!("address type {type_:?} is not supported"));
                continue;
            }
            match a.value.as_deref() {
                None | Some("") => wants_pool = true,
                Some(v) => match v.parse::<IpAddr>() {
                    Err(_) => {
                        plan.unsupported
                            .get_or_insert_with(|| format!("{v:?} is not an IP address"));
                    }
                    Ok(ip) if !usable(&ip) => {
                        plan.unusable.get_or_insert_with(|| {
                            format!("address {ip} is not usable by this proxy")
                        });
                    }
                    Ok(ip) => {
                        if !plan.addresses.contains(&ip) {
                            plan.addresses.push(ip);
                            taken.insert(ip);
                        }
                    }
                },
            }
        }
        if wants_pool {
            needs_pool.push((*key).clone());
        }
        plans.insert((*key).clone(), plan);
    }
    for key in needs_pool {
        let ip = pick(&key, pool, &taken);
        if let Some(plan) = plans.get_mut(&key) {
            match ip {
                Some(ip) => {
                    taken.insert(ip);
                    plan.addresses.push(ip);
                }
                None => plan.unassigned = true,
            }
        }
    }
    plans
}

/// FNV-1a: stable across releases and platforms (unlike `DefaultHasher`).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Hash into the pool, then probe linearly; never `.0` or `.255`. `None` when full.
fn pick(
    key: &ObjectKey,
    (base, prefix): (Ipv4Addr, u8),
    taken: &BTreeSet<IpAddr>,
) -> Option<IpAddr> {
    let prefix = prefix.min(32);
    let size: u64 = 1u64 << (32 - u32::from(prefix));
    let network = u64::from(u32::from(base)) & !(size - 1);
    let start = fnv1a(format!("{}/{}", key.namespace, key.name).as_bytes()) % size;
    (0..size).find_map(|i| {
        let candidate = Ipv4Addr::from(((network + (start + i) % size) & 0xffff_ffff) as u32);
        let last = candidate.octets()[3];
        let ip = IpAddr::V4(candidate);
        (last != 0 && last != 255 && !taken.contains(&ip)).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_model::{GatewaySpec, GatewaySpecAddress, ObjectMeta};

    fn gw(addresses: Vec<GatewaySpecAddress>) -> Gateway {
        Gateway {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "Gateway".into(),
            metadata: ObjectMeta::default(),
            spec: GatewaySpec {
                addresses,
                ..Default::default()
            },
        }
    }

    fn addr(type_: Option<&str>, value: Option<&str>) -> GatewaySpecAddress {
        GatewaySpecAddress {
            type_: type_.map(Into::into),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn pool_addresses_are_stable_distinct_and_avoid_edges() {
        let pool = (Ipv4Addr::new(127, 10, 0, 0), 30); // .0 .1 .2 .3: only .1 .2 .3 usable
        let keys: Vec<ObjectKey> = (0..3)
            .map(|i| ObjectKey::new("ns", format!("g{i}")))
            .collect();
        let g = gw(vec![]);
        let list: Vec<_> = keys.iter().map(|k| (k, &g)).collect();
        let a = assign(&list, pool);
        let b = assign(&list, pool);
        assert_eq!(a, b);
        let ips: BTreeSet<IpAddr> = a.values().map(|p| p.addresses[0]).collect();
        assert_eq!(ips.len(), 3);
        assert!(!ips.contains(&IpAddr::V4(Ipv4Addr::new(127, 10, 0, 0))));
        // A fourth Gateway does not fit.
        let k4 = ObjectKey::new("ns", "g3");
        let mut list4 = list.clone();
        list4.push((&k4, &g));
        assert_eq!(
            assign(&list4, pool)
                .values()
                .filter(|p| p.unassigned)
                .count(),
            1
        );
    }

    #[test]
    fn spec_addresses_are_classified() {
        let k = ObjectKey::new("ns", "g");
        let cases = [
            (addr(None, Some("127.0.0.5")), None, None, Some("127.0.0.5")),
            (addr(Some("IPAddress"), None), None, None, None),
            (addr(Some("Hostname"), Some("a.com")), Some(()), None, None),
            (addr(None, Some("not-an-ip")), Some(()), None, None),
            (addr(None, Some("192.0.2.1")), None, Some(()), None),
        ];
        for (a, unsupported, unusable, expect) in cases {
            let g = gw(vec![a.clone()]);
            let plan = &assign(&[(&k, &g)], (Ipv4Addr::new(127, 10, 0, 0), 16))[&k];
            assert_eq!(plan.unsupported.is_some(), unsupported.is_some(), "{a:?}");
            assert_eq!(plan.unusable.is_some(), unusable.is_some(), "{a:?}");
            if let Some(e) = expect {
                assert_eq!(plan.addresses, vec![e.parse::<IpAddr>().unwrap()]);
            }
        }
        // No value: a pool address.
        let g = gw(vec![addr(Some("IPAddress"), None)]);
        let plan = &assign(&[(&k, &g)], (Ipv4Addr::new(127, 10, 0, 0), 16))[&k];
        assert!(matches!(plan.addresses[..], [IpAddr::V4(ip)] if ip.octets()[..2] == [127, 10]));
    }
}
