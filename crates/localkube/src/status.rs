//! Kubernetes `metav1.Status` bodies, as the API server sends with every error.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The `reason` the API server uses for an HTTP status code.
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "AlreadyExists",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A failure `Status` object.
pub(crate) fn failure_body(code: u16, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason_for(code),
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

/// An error response with a `Status` body.
pub(crate) fn error(code: u16, message: impl AsRef<str>, details: Option<Value>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        failure_body(code, message.as_ref(), details).to_string(),
    )
        .into_response()
}

/// `pods "x" not found`.
pub(crate) fn pod_not_found(name: &str) -> Response {
    error(
        404,
        format!("pods \"{name}\" not found"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

/// A JSON body with status 200.
pub(crate) fn json_ok(v: &impl serde::Serialize) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error(500, format!("cannot encode response: {e}"), None),
    }
}
