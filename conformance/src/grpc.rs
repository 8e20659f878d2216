//! Case kind `grpc` (README "Other kinds"): a unary call of the gRPC echo over plaintext
//! HTTP/2 to the Gateway, with the case's `:authority` and metadata; checks `grpc_code` and, on
//! OK, `expected_full_method`, `namespace` (when non-empty) and the `backend` pod prefix.

use crate::exec::{eventually, instantiate, CaseEnv};
use crate::suite::Case;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use trellis_testkit::grpc_echo::{grpc_unary, GrpcCall, GrpcCode, GrpcExpectation};

#[derive(Debug, Clone, Deserialize)]
pub struct GrpcRequestSpec {
    pub port: u16,
    pub full_method: String,
    /// `None`: the dial target `<ip>:<port>`.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GrpcExpect {
    pub grpc_code: String,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub expected_full_method: Option<String>,
}

/// The call a case describes, plus `extra` metadata (distribution entropy).
pub fn call_of(spec: &GrpcRequestSpec, extra: &[(String, String)]) -> GrpcCall {
    GrpcCall {
        full_method: spec.full_method.clone(),
        authority: spec.authority.clone(),
        // grpc-go lowercases metadata keys.
        metadata: spec
            .metadata
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .chain(
                extra
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
            )
            .collect(),
    }
}

/// One attempt; `Ok(pod)` on success (`""` when the expected status is not OK).
pub async fn attempt(
    case: &Case,
    env: &CaseEnv<'_>,
    extra: &[(String, String)],
) -> Result<String, String> {
    let req_v = instantiate(&case.request, "", "", env.certs);
    let spec: GrpcRequestSpec =
        serde_json::from_value(req_v).map_err(|e| format!("bad grpc request spec: {e}"))?;
    let expect: GrpcExpect = serde_json::from_value(case.response.clone())
        .map_err(|e| format!("bad grpc response spec: {e}"))?;
    let code = GrpcCode::from_name(&expect.grpc_code)
        .ok_or_else(|| format!("unknown grpc_code {:?}", expect.grpc_code))?;
    let full_method = expect
        .expected_full_method
        .clone()
        .unwrap_or_else(|| spec.full_method.clone());
    let expectation = GrpcExpectation {
        code,
        full_method: &full_method,
        namespace: expect.namespace.as_deref().unwrap_or(""),
        backend: expect.backend.as_deref().unwrap_or(""),
    };
    let addr = SocketAddr::new(env.ip, spec.port);
    let call = call_of(&spec, extra);
    match grpc_unary(addr, &call, env.timing.request_timeout).await {
        Ok(reply) => {
            reply.check(&expectation)?;
            Ok(reply
                .response
                .map(|r| r.pod().to_string())
                .unwrap_or_default())
        }
        // A call that got no status from a server ends with the status grpc-go reports.
        Err(e) if e.code() == code && code != GrpcCode::OK => Ok(String::new()),
        Err(e) => Err(format!("grpc call {} failed: {e}", call.full_method)),
    }
}

/// Runs a `grpc` case: 3 consecutive passes within 30 s, then its distribution, if any.
pub async fn run(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    let t = env.timing;
    eventually(t.case_timeout, t.consecutive, || async {
        attempt(case, env, &[]).await.map(|_| ())
    })
    .await?;
    if let Some(d) = &case.distribution {
        crate::distribution::run(case, d, env).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_metadata_keys_are_lowercased_and_extra_appended() {
        let spec: GrpcRequestSpec = serde_json::from_value(serde_json::json!({
            "scheme": "h2c", "port": 80, "service": "s", "method": "Echo",
            "full_method": "/s/Echo", "authority": null,
            "metadata": {"Version": "two", "Color": "orange"}
        }))
        .unwrap();
        let call = call_of(&spec, &[("X-Jitter".into(), "7".into())]);
        assert_eq!(call.full_method, "/s/Echo");
        assert_eq!(call.authority, None);
        assert_eq!(
            call.metadata,
            vec![
                ("color".to_string(), "orange".to_string()),
                ("version".to_string(), "two".to_string()),
                ("x-jitter".to_string(), "7".to_string()),
            ]
        );
    }
}
