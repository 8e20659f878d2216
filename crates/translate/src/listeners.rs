//! Per-listener validation: protocol, allowed route kinds, TLS certificates and conflicts.

use crate::conditions::Cond;
use crate::refs::{permitted, From, To};
use std::collections::BTreeMap;
use trellis_ir::Certificate;
use trellis_model::{Listener, ListenerTls, ResourceSet, RouteGroupKind, GATEWAY_GROUP};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Https,
    /// TLS with `tls.mode: Passthrough`: routed by SNI, bytes passed through.
    TlsPassthrough,
    /// TLS with `tls.mode: Terminate`: terminated, the plaintext forwarded over TCP.
    TlsTerminate,
    Tcp,
    Udp,
    Unsupported,
}

impl Protocol {
    fn parse(spec: &Listener) -> Protocol {
        match spec.protocol.as_str() {
            "HTTP" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            "TLS" => match spec.tls.as_ref().and_then(|t| t.mode.as_deref()) {
                Some("Passthrough") => Protocol::TlsPassthrough,
                _ => Protocol::TlsTerminate,
            },
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => Protocol::Unsupported,
        }
    }

    /// Route kinds a listener of this protocol serves.
    fn route_kinds(self) -> &'static [&'static str] {
        match self {
            Protocol::Http | Protocol::Https => &["HTTPRoute", "GRPCRoute"],
            Protocol::TlsPassthrough | Protocol::TlsTerminate => &["TLSRoute"],
            Protocol::Tcp => &["TCPRoute"],
            Protocol::Udp => &["UDPRoute"],
            Protocol::Unsupported => &[],
        }
    }

    /// Listeners on one port must agree on this; HTTPS and both TLS modes share a port (the
    /// proxy picks by SNI).
    fn family(self) -> u8 {
        match self {
            Protocol::Http => 0,
            Protocol::Https | Protocol::TlsPassthrough | Protocol::TlsTerminate => 1,
            Protocol::Tcp => 3,
            Protocol::Udp => 4,
            Protocol::Unsupported => 5,
        }
    }
}

/// Everything the translator needs to know about one listener.
#[derive(Debug, Clone)]
pub struct ListenerState {
    pub spec: Listener,
    pub protocol: Protocol,
    pub port: u16,
    pub supported_kinds: Vec<RouteGroupKind>,
    pub accepted: Cond,
    pub resolved: Cond,
    pub conflicted: Cond,
    /// ResolvedRefs=False that keeps the listener from serving (certificates, not route kinds).
    pub refs_block: bool,
    pub certificates: Vec<Certificate>,
    /// `spec.tls.frontend` validation that applies to this listener's port.
    pub client_validation: Option<trellis_ir::ClientValidation>,
    pub attached_routes: i64,
    /// Valid but needs a feature the data plane lacks: accepted, not programmed, not served.
    pub unsupported: Option<String>,
    /// `None`: the Gateway's own listener; `Some(i)`: from the Gateway's i-th ListenerSet.
    pub origin: Option<usize>,
}

impl ListenerState {
    /// Whether routes of this kind may attach (the namespace check is separate).
    pub fn accepts(&self, kind: crate::grpcroute::RouteKind) -> bool {
        self.accepted.status && self.supported_kinds.iter().any(|k| k.kind == kind.name())
    }

    /// Whether the listener goes into the IR.
    pub fn serves(&self) -> bool {
        self.accepted.status
            && !self.refs_block
            && !self.conflicted.status
            && self.unsupported.is_none()
    }

    pub fn programmed(&self, gateway_programmed: bool) -> Cond {
        if self.conflicted.status && !self.accepted.status {
            // A ListenerSet listener that lost a conflict: not accepted, for the same reason.
            Cond::new(
                "Programmed",
                false,
                self.conflicted.reason,
                self.conflicted.message.clone(),
            )
        } else if let Some(m) = &self.unsupported {
            Cond::new("Programmed", false, "Invalid", m.clone())
        } else if !self.serves() {
            Cond::new(
                "Programmed",
                false,
                "Invalid",
                "listener is invalid; see other conditions",
            )
        } else if !gateway_programmed {
            Cond::new(
                "Programmed",
                false,
                "Pending",
                "the Gateway is not programmed",
            )
        } else {
            Cond::new("Programmed", true, "Programmed", "listener is programmed")
        }
    }
}

fn route_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: Some(GATEWAY_GROUP.into()),
        kind: kind.into(),
    }
}

/// Validates one Gateway listener in isolation (conflicts come from [`mark_conflicts`]).
pub fn validate(resources: &ResourceSet, gateway_ns: &str, spec: &Listener) -> ListenerState {
    validate_owned(resources, "Gateway", gateway_ns, spec)
}

/// Validates a listener owned by a Gateway or a ListenerSet (`owner_kind` in `owner_ns`, which
/// is who needs a ReferenceGrant for cross-namespace certificates).
pub fn validate_owned(
    resources: &ResourceSet,
    owner_kind: &'static str,
    gateway_ns: &str,
    spec: &Listener,
) -> ListenerState {
    let protocol = Protocol::parse(spec);
    let mut state = ListenerState {
        spec: spec.clone(),
        protocol,
        port: u16::try_from(spec.port).unwrap_or(0),
        supported_kinds: Vec::new(),
        accepted: Cond::new("Accepted", true, "Accepted", "listener is accepted"),
        resolved: Cond::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references are resolved",
        ),
        conflicted: Cond::new("Conflicted", false, "NoConflicts", "no conflicts"),
        refs_block: false,
        certificates: Vec::new(),
        client_validation: None,
        attached_routes: 0,
        unsupported: None,
        origin: None,
    };
    if protocol == Protocol::Unsupported {
        state.accepted = Cond::new(
            "Accepted",
            false,
            "UnsupportedProtocol",
            format!("protocol {:?} is not supported", spec.protocol),
        );
        return state;
    }
    if state.port == 0 {
        state.accepted = Cond::new(
            "Accepted",
            false,
            "PortUnavailable",
            format!("port {} is out of range", spec.port),
        );
        return state;
    }
    // Route kinds.
    let kinds = spec
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.as_slice())
        .unwrap_or_default();
    if kinds.is_empty() {
        state
            .supported_kinds
            .extend(protocol.route_kinds().iter().map(|k| route_kind(k)));
    } else {
        let mut invalid = Vec::new();
        for k in kinds {
            let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
            if group == GATEWAY_GROUP && protocol.route_kinds().contains(&k.kind.as_str()) {
                if !state.supported_kinds.contains(&route_kind(&k.kind)) {
                    state.supported_kinds.push(route_kind(&k.kind));
                }
            } else {
                invalid.push(format!("{group}/{}", k.kind));
            }
        }
        if !invalid.is_empty() {
            state.resolved = Cond::new(
                "ResolvedRefs",
                false,
                "InvalidRouteKinds",
                format!(
                    "route kinds not supported on this listener: {}",
                    invalid.join(", ")
                ),
            );
            state.refs_block = state.supported_kinds.is_empty();
        }
    }
    if matches!(protocol, Protocol::Https | Protocol::TlsTerminate) {
        match certificates(resources, owner_kind, gateway_ns, spec.tls.as_ref()) {
            Ok(certs) => state.certificates = certs,
            Err((reason, message)) => {
                state.resolved = Cond::new("ResolvedRefs", false, reason, message);
                state.refs_block = true;
            }
        }
    }
    state
}

/// Resolves an HTTPS listener's certificateRefs; every ref must be valid.
fn certificates(
    resources: &ResourceSet,
    owner_kind: &'static str,
    gateway_ns: &str,
    tls: Option<&ListenerTls>,
) -> Result<Vec<Certificate>, (&'static str, String)> {
    let Some(tls) = tls else {
        return Err((
            "InvalidCertificateRef",
            "HTTPS listener has no tls configuration".into(),
        ));
    };
    if tls.mode.as_deref().is_some_and(|m| m != "Terminate") {
        return Err((
            "InvalidCertificateRef",
            "HTTPS listeners only support tls.mode Terminate".into(),
        ));
    }
    if tls.certificate_refs.is_empty() {
        return Err((
            "InvalidCertificateRef",
            "HTTPS listener has no certificateRefs".into(),
        ));
    }
    let mut out = Vec::new();
    for r in &tls.certificate_refs {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        if !group.is_empty() || kind != "Secret" {
            return Err((
                "InvalidCertificateRef",
                format!("certificateRef to {group}/{kind} is not supported"),
            ));
        }
        let ns = r.namespace.as_deref().unwrap_or(gateway_ns);
        let from = From {
            group: GATEWAY_GROUP,
            kind: owner_kind,
            namespace: gateway_ns,
        };
        let to = To {
            group: "",
            kind: "Secret",
            namespace: ns,
            name: &r.name,
        };
        if !permitted(resources, &from, &to) {
            return Err((
                "RefNotPermitted",
                format!("no ReferenceGrant allows access to Secret {ns}/{}", r.name),
            ));
        }
        out.push(
            load_tls_secret(resources, ns, &r.name).map_err(|m| ("InvalidCertificateRef", m))?,
        );
    }
    Ok(out)
}

/// Reads a `kubernetes.io/tls` Secret and checks both PEM blocks parse.
pub fn load_tls_secret(
    resources: &ResourceSet,
    ns: &str,
    name: &str,
) -> Result<Certificate, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let secret = resources
        .secret(ns, name)
        .ok_or_else(|| format!("Secret {ns}/{name} not found"))?;
    let get = |key: &str| -> Result<String, String> {
        let bytes = secret
            .value(key)
            .ok_or_else(|| format!("Secret {ns}/{name} has no {key}"))??;
        String::from_utf8(bytes).map_err(|_| format!("Secret {ns}/{name} {key} is not text"))
    };
    let cert_pem = get("tls.crt")?;
    let key_pem = get("tls.key")?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect();
    match certs {
        Ok(c) if !c.is_empty() => {}
        _ => {
            return Err(format!(
                "Secret {ns}/{name} tls.crt holds no valid PEM certificate"
            ))
        }
    }
    if PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).is_err() {
        return Err(format!(
            "Secret {ns}/{name} tls.key holds no valid PEM private key"
        ));
    }
    Ok(Certificate {
        name: format!("{ns}/{name}"),
        cert_pem,
        key_pem,
    })
}

/// Listeners on one port must share a protocol (ProtocolConflict) and, per protocol, have
/// distinct hostnames (HostnameConflict). Every listener involved is marked.
pub fn mark_conflicts(listeners: &mut [ListenerState]) {
    // UDP ports are a separate space from TCP ones.
    let mut by_port: BTreeMap<(u16, bool), Vec<usize>> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        if l.accepted.status {
            let udp = l.protocol == Protocol::Udp;
            by_port.entry((l.port, udp)).or_default().push(i);
        }
    }
    for idx in by_port.values() {
        let first = listeners[idx[0]].protocol.family();
        if idx.iter().any(|&i| listeners[i].protocol.family() != first) {
            for &i in idx {
                listeners[i].conflicted = Cond::new(
                    "Conflicted",
                    true,
                    "ProtocolConflict",
                    format!(
                        "listeners on port {} use different protocols",
                        listeners[i].port
                    ),
                );
            }
            continue;
        }
        let mut by_host: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
        for &i in idx {
            let h = listeners[i]
                .spec
                .hostname
                .as_ref()
                .map(|h| h.to_ascii_lowercase());
            by_host.entry(h).or_default().push(i);
        }
        for group in by_host.values().filter(|g| g.len() > 1) {
            for &i in group {
                listeners[i].conflicted = Cond::new(
                    "Conflicted",
                    true,
                    "HostnameConflict",
                    format!(
                        "another listener on port {} has the same hostname",
                        listeners[i].port
                    ),
                );
            }
        }
    }
}
