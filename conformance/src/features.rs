//! The ONE place that says which Gateway API features Trellis claims, and the decision whether
//! a test runs or is skipped (unclaimed features, profile, skip_if/unless_supported,
//! Kubernetes-only content).

use crate::suite::TestDef;

/// Features Trellis claims (exact names used in the suite's `features` fields).
pub const CLAIMED_FEATURES: &[&str] = &[
    // Core.
    "Gateway",
    "HTTPRoute",
    "ReferenceGrant",
    // Gateway extended.
    "GatewayHTTPListenerIsolation",
    "GatewayPort8080",
    "GatewayStaticAddresses",
    "GatewayAddressEmpty",
    // HTTPRoute extended.
    "HTTPRouteQueryParamMatching",
    "HTTPRouteMethodMatching",
    "HTTPRouteResponseHeaderModification",
    "HTTPRoutePortRedirect",
    "HTTPRouteSchemeRedirect",
    "HTTPRoutePathRedirect",
    "HTTPRouteHostRewrite",
    "HTTPRoutePathRewrite",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteBackendTimeout",
    "HTTPRouteRetry",
    "HTTPRouteRetryBackendTimeout",
    "HTTPRouteRetryBackoff",
    "HTTPRouteRetryConnectionError",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteCORS",
    "HTTPRouteNamedRouteRule",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteParentRefPort",
    "HTTPRouteDestinationPortMatching",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "GatewayFrontendClientCertificateValidation",
    "GatewayFrontendClientCertificateValidationInsecureFallback",
    "GatewayBackendClientCertificate",
    "ListenerSet",
    // BackendTLSPolicy (GATEWAY-HTTP extended).
    "BackendTLSPolicy",
    "BackendTLSPolicySANValidation",
    // GRPCRoute.
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    // L4 routes (GATEWAY-TLS / -TCP / -UDP).
    "TLSRoute",
    "TLSRouteModeTerminate",
    "TLSRouteModeMixed",
    "TCPRoute",
    "UDPRoute",
];

/// Tests skipped by name, with the reason. Kept empty unless a test cannot be mapped at all.
pub const SKIP_LIST: &[(&str, &str)] = &[];

/// Status check types that only make sense against a real Kubernetes cluster.
pub const KUBERNETES_ONLY_CHECKS: &[(&str, &str)] = &[(
    "generated_resources_metadata",
    "Kubernetes-only: generated ServiceAccount/Pod/Service metadata",
)];

/// Features that only mean something on a cluster; a test needing one is skipped with this
/// reason rather than "unclaimed".
pub const KUBERNETES_ONLY_FEATURES: &[(&str, &str)] = &[(
    "GatewayInfrastructurePropagation",
    "Kubernetes-only: spec.infrastructure labels/annotations on generated ServiceAccount/Pod/Service (standalone Trellis generates none)",
)];

pub fn is_claimed(feature: &str) -> bool {
    CLAIMED_FEATURES.contains(&feature)
}

/// Why a test does not run, or `None` when it runs.
pub fn skip_reason(test: &TestDef, profile: Option<&str>) -> Option<String> {
    if let Some((_, why)) = SKIP_LIST
        .iter()
        .find(|(n, _)| *n == test.name || *n == test.dir)
    {
        return Some(why.to_string());
    }
    if let Some(p) = profile {
        if !test.profiles.iter().any(|x| x.eq_ignore_ascii_case(p)) {
            return Some(format!("not in profile {p}"));
        }
    }
    let unclaimed: Vec<&str> = test
        .features
        .iter()
        .map(String::as_str)
        .filter(|f| !is_claimed(f))
        .collect();
    if let Some((_, why)) = KUBERNETES_ONLY_FEATURES
        .iter()
        .find(|(f, _)| unclaimed.contains(f))
    {
        return Some(why.to_string());
    }
    if !unclaimed.is_empty() {
        return Some(format!("unclaimed features: {}", unclaimed.join(", ")));
    }
    if !test.skip_if_supported.is_empty() && test.skip_if_supported.iter().all(|f| is_claimed(f)) {
        return Some(format!(
            "skip_if_supported: {} claimed",
            test.skip_if_supported.join(", ")
        ));
    }
    let missing: Vec<&str> = test
        .skip_unless_supported
        .iter()
        .map(String::as_str)
        .filter(|f| !is_claimed(f))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "skip_unless_supported: {} not claimed (upstream returns without checking)",
            missing.join(", ")
        ));
    }
    // A test whose only substance is a Kubernetes-only check (no traffic) is skipped whole.
    if test.cases.is_empty() {
        if let Some(why) = test
            .status_expectations
            .iter()
            .filter_map(|c| c.get("check").and_then(|v| v.as_str()))
            .find_map(kubernetes_only)
        {
            return Some(why.to_string());
        }
    }
    None
}

/// The reason a check type is Kubernetes-only, if it is.
pub fn kubernetes_only(check: &str) -> Option<&'static str> {
    KUBERNETES_ONLY_CHECKS
        .iter()
        .find(|(c, _)| *c == check)
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{default_suite_dir, Suite};

    #[test]
    fn every_claimed_feature_is_spelled_as_in_the_suite_or_documented() {
        let suite = Suite::load(&default_suite_dir()).unwrap();
        let used: std::collections::BTreeSet<&str> = suite
            .tests
            .iter()
            .flat_map(|t| t.features.iter().map(String::as_str))
            .collect();
        // Upstream features no test of this data uses yet; everything else must appear.
        let ahead = |f: &str| {
            f == "GatewayPort8080"
                || f == "BackendTLSPolicySANValidation"
                || (f.starts_with("HTTPRouteRetry") && f != "HTTPRouteRetry")
        };
        for f in CLAIMED_FEATURES.iter().filter(|f| !ahead(f)) {
            assert!(
                used.contains(f),
                "claimed feature {f} never appears in the suite"
            );
        }
    }

    #[test]
    fn skips_follow_features_profiles_and_skip_fields() {
        let suite = Suite::load(&default_suite_dir()).unwrap();
        let t = suite.find("httproute-simple-same-namespace").unwrap();
        assert_eq!(skip_reason(t, None), None);
        assert_eq!(skip_reason(t, Some("GATEWAY-HTTP")), None);
        assert!(skip_reason(t, Some("GATEWAY-GRPC"))
            .unwrap()
            .contains("not in profile"));
        let g = suite.find("grpcroute-weight").unwrap();
        assert_eq!(skip_reason(g, None), None);
        assert!(skip_reason(g, Some("GATEWAY-HTTP"))
            .unwrap()
            .contains("not in profile"));
        // skip_unless_supported: skipped unless every listed feature is claimed.
        let with = |field: &str, feature: &str| {
            let text =
                format!(r#"{{"name": "T", "features": ["Gateway"], "{field}": ["{feature}"]}}"#);
            crate::suite::parse_test(&text, "t").unwrap()
        };
        let unless_unclaimed = with("skip_unless_supported", "Mesh");
        assert!(skip_reason(&unless_unclaimed, None)
            .unwrap()
            .contains("skip_unless_supported: Mesh not claimed"));
        assert_eq!(
            skip_reason(&with("skip_unless_supported", "Gateway"), None),
            None
        );
        assert!(skip_reason(&with("skip_if_supported", "Gateway"), None).is_some());
        assert_eq!(skip_reason(&with("skip_if_supported", "Mesh"), None), None);
    }
}
