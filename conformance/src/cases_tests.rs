use super::*;
use serde_json::json;

fn resp(status: u16, headers: &[(&str, &str)], body: Value) -> Response {
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Response {
        status,
        headers: h,
        body: bytes::Bytes::from(if body.is_null() {
            "not json".to_string()
        } else {
            body.to_string()
        }),
        client_cert_requested: false,
    }
}

fn sent(path: &str) -> Sent {
    Sent {
        scheme: "http".into(),
        method: "GET".into(),
        path: path.into(),
    }
}

fn echo(path: &str, headers: Value) -> Value {
    json!({"path": path, "host": "example.com", "method": "GET", "proto": "HTTP/1.1", "headers": headers,
           "namespace": "gateway-conformance-infra", "pod": "infra-backend-v1-abcde-fghij"})
}

fn expect(v: Value) -> HttpExpect {
    HttpExpect::from_value(&v).unwrap()
}

#[test]
fn status_sets_and_timeout_equivalence() {
    assert!(status_allowed(&[200], 200));
    assert!(!status_allowed(&[200], 404));
    assert!(status_allowed(&[504], 408));
    assert!(status_allowed(&[408], 504));
    assert!(!status_allowed(&[500], 504));
}

#[test]
fn request_expectations() {
    let e = expect(
        json!({"status": [200], "backend": "infra-backend-v1", "namespace": "gateway-conformance-infra",
        "expected_request": {"path": "/a?x=1", "host": "example.com", "method": "GET",
            "headers": {"X-Add": "a,b"}, "absent_headers": ["X-Remove"]}}),
    );
    let ok = resp(200, &[], echo("/a?x=1", json!({"X-Add": ["a", "b"]})));
    assert_eq!(check_response(&e, &sent("/a?x=1"), &ok), Ok(()));
    // Case-insensitive header names in the echo.
    let lower = resp(200, &[], echo("/a?x=1", json!({"x-add": ["a", "b"]})));
    assert_eq!(check_response(&e, &sent("/a?x=1"), &lower), Ok(()));
    let spaced = resp(200, &[], echo("/a?x=1", json!({"X-Add": ["a, b"]})));
    assert!(check_response(&e, &sent("/a?x=1"), &spaced).is_err());
    let present = resp(
        200,
        &[],
        echo("/a?x=1", json!({"X-Add": ["a", "b"], "X-Remove": ["v"]})),
    );
    assert!(check_response(&e, &sent("/a?x=1"), &present)
        .unwrap_err()
        .contains("X-Remove"));
    let wrong_path = resp(200, &[], echo("/a", json!({"X-Add": ["a", "b"]})));
    assert!(check_response(&e, &sent("/a?x=1"), &wrong_path)
        .unwrap_err()
        .contains("path"));
    let mut other_pod = echo("/a?x=1", json!({"X-Add": ["a", "b"]}));
    other_pod["pod"] = json!("infra-backend-v2-abcde-fghij");
    assert!(
        check_response(&e, &sent("/a?x=1"), &resp(200, &[], other_pod))
            .unwrap_err()
            .contains("pod")
    );
    // Non-200 statuses check nothing else.
    let e404 =
        expect(json!({"status": [404], "namespace": "x", "expected_request": {"path": "/nope"}}));
    assert_eq!(
        check_response(&e404, &sent("/"), &resp(404, &[], Value::Null)),
        Ok(())
    );
}

#[test]
fn empty_namespace_means_non_echo_body() {
    let e = expect(
        json!({"status": [200, 204], "namespace": "", "expected_request": {"path": "", "method": "OPTIONS"},
        "header_any_of": {"access-control-allow-methods": ["GET, OPTIONS", "OPTIONS, GET"]}, "ignore_whitespace": true}),
    );
    let mut s = sent("/");
    s.method = "OPTIONS".into();
    let gw = resp(
        204,
        &[("access-control-allow-methods", "OPTIONS,GET")],
        Value::Null,
    );
    assert_eq!(check_response(&e, &s, &gw), Ok(()));
    let forwarded = resp(
        200,
        &[("access-control-allow-methods", "GET,OPTIONS")],
        echo("/", json!({})),
    );
    assert!(check_response(&e, &s, &forwarded).is_err());
    let bad = resp(204, &[("access-control-allow-methods", "GET")], Value::Null);
    assert!(check_response(&e, &s, &bad)
        .unwrap_err()
        .contains("none of"));
}

#[test]
fn response_header_rules() {
    let e = expect(
        json!({"status": [200], "headers": {"X-Header-Set": "set", "X-Multi": "a,b"}, "absent_headers": ["X-Gone"]}),
    );
    let ok = resp(
        200,
        &[("x-header-set", "set"), ("x-multi", "a"), ("x-multi", "b")],
        echo("/", json!({})),
    );
    assert_eq!(check_response(&e, &sent("/"), &ok), Ok(()));
    let gone = resp(
        200,
        &[("x-header-set", "set"), ("x-multi", "a,b"), ("x-gone", "1")],
        echo("/", json!({})),
    );
    assert!(check_response(&e, &sent("/"), &gone)
        .unwrap_err()
        .contains("X-Gone"));
    let missing = resp(200, &[("x-multi", "a,b")], echo("/", json!({})));
    assert!(check_response(&e, &sent("/"), &missing)
        .unwrap_err()
        .contains("missing"));
}

fn redirect(v: Value) -> RedirectExpect {
    serde_json::from_value(v).unwrap()
}

#[test]
fn location_parsing_and_null_rules() {
    assert_eq!(
        parse_location("https://example.org:8443/p?q=1").unwrap(),
        Location {
            scheme: Some("https".into()),
            host: Some("example.org".into()),
            port: Some("8443".into()),
            path: "/p".into()
        }
    );
    assert_eq!(parse_location("/relative").unwrap().host, None);
    let s = sent("/orig?x=1");
    // All null: scheme = request scheme, port absent or default, path = request path sans query.
    let all_null = redirect(json!({"scheme": null, "host": null, "port": null, "path": null}));
    assert_eq!(
        check_redirect(&all_null, &s, "http://anything/orig"),
        Ok(())
    );
    assert_eq!(
        check_redirect(&all_null, &s, "http://anything:80/orig"),
        Ok(())
    );
    assert!(check_redirect(&all_null, &s, "http://anything:8080/orig").is_err());
    assert!(check_redirect(&all_null, &s, "https://anything/orig").is_err());
    assert!(check_redirect(&all_null, &s, "http://anything/other").is_err());
    let host =
        redirect(json!({"host": "example.org", "scheme": "https", "port": null, "path": null}));
    assert_eq!(
        check_redirect(&host, &s, "https://example.org/orig"),
        Ok(())
    );
    assert_eq!(
        check_redirect(&host, &s, "https://example.org:443/orig"),
        Ok(())
    );
    assert!(check_redirect(&host, &s, "https://example.com/orig").is_err());
    let port = redirect(json!({"port": "8083", "path": "/see-other"}));
    assert_eq!(check_redirect(&port, &s, "http://x:8083/see-other"), Ok(()));
    assert!(check_redirect(&port, &s, "http://x/see-other").is_err());
    // Redirect checks run through check_response for 3xx statuses.
    let e = expect(json!({"status": [302], "redirect": {"host": "example.org"}}));
    assert_eq!(
        check_response(
            &e,
            &s,
            &resp(302, &[("location", "http://example.org/orig")], Value::Null)
        ),
        Ok(())
    );
    assert!(check_response(&e, &s, &resp(302, &[], Value::Null)).is_err());
}

#[test]
fn authority_defaults() {
    let spec = |v: Value| HttpRequestSpec::from_value(&v).unwrap();
    let ip: std::net::IpAddr = "127.10.0.1".parse().unwrap();
    assert_eq!(
        spec(json!({"scheme": "http", "port": 80, "host": null})).authority(ip),
        "127.10.0.1"
    );
    assert_eq!(
        spec(json!({"scheme": "http", "port": 8080, "host": null})).authority(ip),
        "127.10.0.1:8080"
    );
    assert_eq!(
        spec(json!({"scheme": "https", "port": 443})).authority(ip),
        "127.10.0.1"
    );
    assert_eq!(
        spec(json!({"scheme": "http", "port": 8080, "host": "foo.com:8080"})).authority(ip),
        "foo.com:8080"
    );
}

#[test]
fn pod_to_backend() {
    assert_eq!(
        backend_of_pod("infra-backend-v1-abcde-fghij"),
        "infra-backend-v1"
    );
    assert_eq!(backend_of_pod("x"), "x");
}
