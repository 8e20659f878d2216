//! ReferenceGrant checks for cross-namespace references.

use trellis_model::ResourceSet;

/// The referring side of a reference.
pub struct From<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
}

/// The referenced object.
pub struct To<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Same-namespace references are always allowed; others need a ReferenceGrant in the target
/// namespace whose `from` and `to` both match.
pub fn permitted(resources: &ResourceSet, from: &From, to: &To) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    resources.reference_grants_in(to.namespace).any(|grant| {
        grant
            .spec
            .from
            .iter()
            .any(|f| f.group == from.group && f.kind == from.kind && f.namespace == from.namespace)
            && grant.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to.name)
            })
    })
}
