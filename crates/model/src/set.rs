//! [`ResourceSet`]: typing raw objects into per-kind maps with lookups.

use crate::core::{Backend, ConfigMap, EndpointSlice, Namespace, Secret, Service};
use crate::gateway::{Gateway, GatewayClass, ReferenceGrant};
use crate::grpcroute::GrpcRoute;
use crate::httproute::HttpRoute;
use crate::l4route::L4Route;
use crate::listenerset::ListenerSet;
use crate::meta::ObjectMeta;
use crate::policy::BackendTlsPolicy;
use crate::{split_api_version, Diagnostic, SourcedObject, GATEWAY_GROUP, NAMESPACE_NAME_LABEL};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// `namespace/name` of a namespaced object (namespace empty for cluster-scoped ones). Ordered,
/// so iteration over a [`ResourceSet`] is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// A Gateway API kind (or version) Trellis recognises but does not implement.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedObject {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub value: serde_json::Value,
}

/// All objects of the kinds Trellis understands, keyed by `namespace/name`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSet {
    /// Keyed by name (cluster-scoped).
    pub gateway_classes: BTreeMap<String, GatewayClass>,
    pub gateways: BTreeMap<ObjectKey, Gateway>,
    pub http_routes: BTreeMap<ObjectKey, HttpRoute>,
    pub grpc_routes: BTreeMap<ObjectKey, GrpcRoute>,
    pub tcp_routes: BTreeMap<ObjectKey, L4Route>,
    pub udp_routes: BTreeMap<ObjectKey, L4Route>,
    pub tls_routes: BTreeMap<ObjectKey, L4Route>,
    pub reference_grants: BTreeMap<ObjectKey, ReferenceGrant>,
    /// Declared and implied namespaces, all labelled `kubernetes.io/metadata.name`.
    pub namespaces: BTreeMap<String, Namespace>,
    pub services: BTreeMap<ObjectKey, Service>,
    pub endpoint_slices: BTreeMap<ObjectKey, EndpointSlice>,
    pub secrets: BTreeMap<ObjectKey, Secret>,
    pub config_maps: BTreeMap<ObjectKey, ConfigMap>,
    pub backends: BTreeMap<ObjectKey, Backend>,
    pub listener_sets: BTreeMap<ObjectKey, ListenerSet>,
    pub backend_tls_policies: BTreeMap<ObjectKey, BackendTlsPolicy>,
    /// Known Gateway API kinds that Trellis does not implement, keyed by (kind, namespace/name).
    pub unsupported: BTreeMap<(String, ObjectKey), UnsupportedObject>,
    /// `Kind namespace/name` → where the object came from.
    pub sources: BTreeMap<String, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    GatewayClass,
    Gateway,
    HttpRoute,
    GrpcRoute,
    TcpRoute,
    UdpRoute,
    TlsRoute,
    ReferenceGrant,
    Namespace,
    Service,
    EndpointSlice,
    Secret,
    ConfigMap,
    Backend,
    ListenerSet,
    BackendTlsPolicy,
    Unsupported,
}

impl Kind {
    fn of(api_version: &str, kind: &str) -> Option<Kind> {
        let (group, version) = split_api_version(api_version);
        let gw_stable = matches!(version, "v1" | "v1beta1");
        Some(match (group, kind) {
            (GATEWAY_GROUP, "GatewayClass") if gw_stable => Kind::GatewayClass,
            (GATEWAY_GROUP, "Gateway") if gw_stable => Kind::Gateway,
            (GATEWAY_GROUP, "HTTPRoute") if gw_stable => Kind::HttpRoute,
            (GATEWAY_GROUP, "GRPCRoute") if version == "v1" => Kind::GrpcRoute,
            (GATEWAY_GROUP, "ReferenceGrant") if gw_stable => Kind::ReferenceGrant,
            (GATEWAY_GROUP, "TCPRoute") if l4_version(version) => Kind::TcpRoute,
            (GATEWAY_GROUP, "UDPRoute") if l4_version(version) => Kind::UdpRoute,
            (GATEWAY_GROUP, "TLSRoute") if l4_version(version) => Kind::TlsRoute,
            (GATEWAY_GROUP, "ListenerSet") if version == "v1" => Kind::ListenerSet,
            (GATEWAY_GROUP, "BackendTLSPolicy") if matches!(version, "v1" | "v1alpha3") => {
                Kind::BackendTlsPolicy
            }
            (
                GATEWAY_GROUP,
                "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" | "BackendTLSPolicy"
                | "ListenerSet" | "XListenerSet" | "BackendLBPolicy",
            ) => Kind::Unsupported,
            ("", "Namespace") if version == "v1" => Kind::Namespace,
            ("", "Service") if version == "v1" => Kind::Service,
            ("", "Secret") if version == "v1" => Kind::Secret,
            ("", "ConfigMap") if version == "v1" => Kind::ConfigMap,
            ("discovery.k8s.io", "EndpointSlice") if version == "v1" => Kind::EndpointSlice,
            (crate::TRELLIS_GROUP, "Backend") if version == "v1alpha1" => Kind::Backend,
            _ => return None,
        })
    }

    fn cluster_scoped(self) -> bool {
        matches!(self, Kind::GatewayClass | Kind::Namespace)
    }
}

/// TCPRoute / UDPRoute / TLSRoute went v1alpha2 → (TLSRoute) v1alpha3 → v1 with the same shape.
fn l4_version(version: &str) -> bool {
    matches!(version, "v1" | "v1alpha3" | "v1alpha2")
}

fn typed<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    // Deserializing from the borrowed tree avoids cloning every object first.
    T::deserialize(value).map_err(|e| e.to_string())
}

/// What the API server's schema would reject and the translator cannot make sense of.
fn validate_gateway(gw: Gateway) -> Result<Gateway, String> {
    if gw.spec.listeners.is_empty() {
        return Err("spec.listeners must not be empty".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for l in &gw.spec.listeners {
        if !names.insert(l.name.as_str()) {
            return Err(format!("listener name {:?} is used twice", l.name));
        }
    }
    Ok(gw)
}

/// Inserts unless the key is taken; returns whether it was inserted.
fn insert<K: Ord, V>(
    map: &mut BTreeMap<K, V>,
    key: K,
    value: Result<V, String>,
) -> Result<bool, String> {
    let value = value?;
    if map.contains_key(&key) {
        return Ok(false);
    }
    map.insert(key, value);
    Ok(true)
}

impl ResourceSet {
    /// Types every object; objects that fail to type or are of unknown kinds become diagnostics.
    /// A duplicate (same kind, namespace and name) keeps the first and reports the second.
    pub fn from_objects(objects: Vec<SourcedObject>) -> (ResourceSet, Vec<Diagnostic>) {
        let mut set = ResourceSet::default();
        let mut diags = Vec::new();
        for obj in objects {
            set.add(obj, &mut diags);
        }
        set.add_implicit_namespaces();
        (set, diags)
    }

    fn add(&mut self, obj: SourcedObject, diags: &mut Vec<Diagnostic>) {
        let SourcedObject { source, mut value } = obj;
        let diag = |object: Option<String>, message: String| Diagnostic {
            source: source.clone(),
            object,
            message,
        };
        let Some(map) = value.as_object() else {
            diags.push(diag(None, "document is not a mapping; ignored".into()));
            return;
        };
        let api_version = map
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let kind_name = map
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let meta = map.get("metadata").cloned();
        let meta = meta.as_ref();
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let Some(kind) = Kind::of(&api_version, &kind_name) else {
            let object = (!kind_name.is_empty()).then(|| format!("{kind_name} {name}"));
            diags.push(diag(
                object,
                format!("unknown kind {kind_name:?} (apiVersion {api_version:?}); ignored"),
            ));
            return;
        };
        if name.is_empty() {
            diags.push(diag(
                Some(kind_name.clone()),
                "object has no metadata.name; ignored".into(),
            ));
            return;
        }
        let namespace = if kind.cluster_scoped() {
            String::new()
        } else {
            let ns = meta
                .and_then(|m| m.get("namespace"))
                .and_then(|v| v.as_str())
                .unwrap_or("default")
                .to_string();
            // Fill the default so typed objects always carry their namespace.
            if let Some(m) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                m.insert("namespace".into(), serde_json::Value::String(ns.clone()));
            }
            ns
        };
        let key = ObjectKey::new(namespace, name);
        let label = format!("{kind_name} {key}");
        let inserted = match kind {
            Kind::GatewayClass => {
                insert(&mut self.gateway_classes, key.name.clone(), typed(&value))
            }
            Kind::Gateway => insert(
                &mut self.gateways,
                key,
                typed(&value).and_then(validate_gateway),
            ),
            Kind::HttpRoute => insert(&mut self.http_routes, key, typed(&value)),
            Kind::GrpcRoute => insert(&mut self.grpc_routes, key, typed(&value)),
            Kind::TcpRoute => insert(&mut self.tcp_routes, key, typed(&value)),
            Kind::UdpRoute => insert(&mut self.udp_routes, key, typed(&value)),
            Kind::TlsRoute => insert(&mut self.tls_routes, key, typed(&value)),
            Kind::ReferenceGrant => insert(&mut self.reference_grants, key, typed(&value)),
            Kind::Namespace => insert(&mut self.namespaces, key.name.clone(), typed(&value)),
            Kind::Service => insert(&mut self.services, key, typed(&value)),
            Kind::EndpointSlice => insert(&mut self.endpoint_slices, key, typed(&value)),
            Kind::Secret => insert(&mut self.secrets, key, typed(&value)),
            Kind::ConfigMap => insert(&mut self.config_maps, key, typed(&value)),
            Kind::Backend => insert(&mut self.backends, key, typed(&value)),
            Kind::ListenerSet => insert(&mut self.listener_sets, key, typed(&value)),
            Kind::BackendTlsPolicy => insert(&mut self.backend_tls_policies, key, typed(&value)),
            Kind::Unsupported => {
                let metadata: Result<ObjectMeta, String> = value
                    .get("metadata")
                    .map(typed)
                    .unwrap_or_else(|| Ok(ObjectMeta::default()));
                let entry = metadata.map(|metadata| UnsupportedObject {
                    api_version: api_version.clone(),
                    kind: kind_name.clone(),
                    metadata,
                    value: value.clone(),
                });
                let r = insert(&mut self.unsupported, (kind_name.clone(), key), entry);
                if r == Ok(true) {
                    diags.push(diag(
                        Some(label.clone()),
                        format!("kind {kind_name} is not supported by Trellis; ignored"),
                    ));
                }
                r
            }
        };
        match inserted {
            Ok(true) => {
                self.sources.insert(label, source);
            }
            Ok(false) => {
                let first = self.sources.get(&label).cloned().unwrap_or_default();
                diags.push(diag(
                    Some(label),
                    format!("duplicate object (first defined in {first}); ignored"),
                ));
            }
            Err(e) => diags.push(diag(Some(label), format!("invalid object: {e}; ignored"))),
        }
    }

    fn add_implicit_namespaces(&mut self) {
        let mut names: Vec<String> = Vec::new();
        names.extend(self.gateways.keys().map(|k| k.namespace.clone()));
        names.extend(self.http_routes.keys().map(|k| k.namespace.clone()));
        names.extend(self.grpc_routes.keys().map(|k| k.namespace.clone()));
        for routes in [&self.tcp_routes, &self.udp_routes, &self.tls_routes] {
            names.extend(routes.keys().map(|k| k.namespace.clone()));
        }
        names.extend(self.reference_grants.keys().map(|k| k.namespace.clone()));
        names.extend(self.services.keys().map(|k| k.namespace.clone()));
        names.extend(self.endpoint_slices.keys().map(|k| k.namespace.clone()));
        names.extend(self.secrets.keys().map(|k| k.namespace.clone()));
        names.extend(self.config_maps.keys().map(|k| k.namespace.clone()));
        names.extend(self.backends.keys().map(|k| k.namespace.clone()));
        let policies = self.backend_tls_policies.keys();
        names.extend(policies.map(|k| k.namespace.clone()));
        names.extend(self.listener_sets.keys().map(|k| k.namespace.clone()));
        names.extend(self.unsupported.keys().map(|(_, k)| k.namespace.clone()));
        for name in names {
            self.namespaces
                .entry(name.clone())
                .or_insert_with(|| Namespace {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    metadata: ObjectMeta {
                        name,
                        ..Default::default()
                    },
                });
        }
        for (name, ns) in &mut self.namespaces {
            ns.metadata
                .labels
                .insert(NAMESPACE_NAME_LABEL.into(), name.clone());
        }
    }

    pub fn gateway_class(&self, name: &str) -> Option<&GatewayClass> {
        self.gateway_classes.get(name)
    }
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&Gateway> {
        self.gateways.get(&ObjectKey::new(namespace, name))
    }
    pub fn http_route(&self, namespace: &str, name: &str) -> Option<&HttpRoute> {
        self.http_routes.get(&ObjectKey::new(namespace, name))
    }
    pub fn grpc_route(&self, namespace: &str, name: &str) -> Option<&GrpcRoute> {
        self.grpc_routes.get(&ObjectKey::new(namespace, name))
    }
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.get(&ObjectKey::new(namespace, name))
    }
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&ObjectKey::new(namespace, name))
    }
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&ConfigMap> {
        self.config_maps.get(&ObjectKey::new(namespace, name))
    }
    pub fn backend(&self, namespace: &str, name: &str) -> Option<&Backend> {
        self.backends.get(&ObjectKey::new(namespace, name))
    }
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.get(name)
    }

    /// Labels of a namespace; an undeclared one still has its implicit name label.
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        match self.namespaces.get(name) {
            Some(ns) => ns.metadata.labels.clone(),
            None => BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), name.to_string())]),
        }
    }

    /// ReferenceGrants living in `namespace`.
    pub fn reference_grants_in<'a>(
        &'a self,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a ReferenceGrant> + 'a {
        self.reference_grants
            .iter()
            .filter(move |(k, _)| k.namespace == namespace)
            .map(|(_, v)| v)
    }

    /// EndpointSlices of a Service (label `kubernetes.io/service-name`), in name order.
    pub fn endpoint_slices_for<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.endpoint_slices
            .iter()
            .filter(move |(k, s)| {
                k.namespace == namespace
                    && s.metadata
                        .labels
                        .get("kubernetes.io/service-name")
                        .map(String::as_str)
                        == Some(service)
            })
            .map(|(_, v)| v)
    }

    /// Unsupported objects of one kind.
    pub fn unsupported_of<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a UnsupportedObject> + 'a {
        self.unsupported
            .iter()
            .filter(move |((k, _), _)| k == kind)
            .map(|(_, v)| v)
    }
}
