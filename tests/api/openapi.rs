//! The OpenAPI document: committed, complete, and in step with the code.

use serde_json::Value;

const COMMITTED: &str = "openapi/openapi.json";

/// The committed document must be what the code generates. Run with `UPDATE_OPENAPI=1` to
/// rewrite it after changing the API.
#[test]
fn the_committed_document_matches_the_code() {
    let generated = pregonero::api::openapi::document_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} differs from the code; run `UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
}

#[test]
fn every_route_declares_its_errors_and_protected_routes_their_module() {
    let doc: Value = serde_json::from_str(&pregonero::api::openapi::document_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12);
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let public = ["/health", "/v1/auth/login"].contains(&path.as_str());
            if !public {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
                let security = op["security"].as_array().expect("security");
                assert!(!security.is_empty(), "{method} {path} lacks security");
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer");
}
