//! [`ApiError`], a refused call (one error type for the features and the edge), and the two shapes it is answered in (the processor's
//! error object, RFC 9457 problem details); the store's, the daemon's and the
//! authentication's errors mapped to it.

use axum::http::StatusCode;
use serde_json::json;

use crate::api::auth::AuthError;
use crate::api::store::StoreError;
use crate::client::ClientError;
use crate::protocol::Status;

/// Which error shape a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The processor's paths: its documented error object.
    Processor,
    /// cofre's own paths: RFC 9457 problem details.
    Problem,
}

/// A refused call. Messages never carry a secret value (field names only).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`customer_not_found`, `schema_violation`, ...).
    pub code: &'static str,
    /// The field at fault (JSON pointer or name), if one.
    pub field: Option<String>,
    /// A short human message.
    pub message: String,
    /// The processor's error `type`: `APIM` (gateway checks: auth, limits, schema) or
    /// `HOST` (record rules, daemon answers).
    pub origin: &'static str,
    /// The refusal's own record (a refused PIN validation's history row) is kept: the
    /// changes made before it are committed with the answer instead of undone.
    pub keep_effects: bool,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let origin = if matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::BAD_REQUEST
                | StatusCode::CONFLICT
        ) {
            "APIM"
        } else {
            "HOST"
        };
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            origin,
            keep_effects: false,
        }
    }

    /// Marks a refusal whose changes (its own record) are kept.
    #[must_use]
    pub fn keeping_effects(mut self) -> Self {
        self.keep_effects = true;
        self
    }

    /// Names the field at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: a well-formed request that breaks a rule.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 (the detail is logged, not sent).
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The body in a route's style, with its content type.
    pub fn render(&self, style: Style) -> (StatusCode, &'static str, String) {
        match style {
            Style::Processor => {
                let body = json!({
                    "hasError": true,
                    "errors": [{"code": self.code, "description": self.message}],
                    "error": {
                        "type": self.origin,
                        "code": self.code,
                        "field": self.field,
                        "message": self.message,
                    },
                });
                (self.status, "application/json", body.to_string())
            }
            Style::Problem => {
                let mut body = json!({
                    "type": format!("urn:cofre:problem:{}", self.code),
                    "title": self.status.canonical_reason().unwrap_or("Error"),
                    "status": self.status.as_u16(),
                    "detail": self.message,
                    "code": self.code,
                });
                if let Some(f) = &self.field {
                    body["field"] = json!(f);
                    body["invalid-params"] = json!([{"name": f, "reason": self.message}]);
                }
                (self.status, "application/problem+json", body.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::unprocessable(
                match what {
                    "customer" => "customer_not_found",
                    "account" => "account_not_found",
                    "card" => "card_not_found",
                    _ => "not_found",
                },
                format!("{what} not found"),
            ),
            StoreError::Conflict(_) => {
                ApiError::unprocessable("duplicate", "a record with this key already exists")
            }
            StoreError::Rule(r) => ApiError::unprocessable("rule_violation", r),
            StoreError::Corrupt(detail) => ApiError::internal(format!("corrupt record: {detail}")),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status { status, message } => match status {
                Status::StoreUnavailable | Status::Overloaded | Status::BruteForceGuard => {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "hsm_unavailable",
                        format!("the HSM cannot serve this now ({})", status.name()),
                    )
                }
                _ => ApiError::internal(format!("hsm answered {}: {message}", status.name())),
            },
            ClientError::Connection(_) | ClientError::Timeout(_) | ClientError::Tls(_) => {
                tracing::error!(error = %e, "hsm unreachable");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "hsm_unavailable",
                    "the HSM could not be reached",
                )
            }
            other => ApiError::internal(format!("hsm call: {other}")),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::Header(_) => "missing_header",
            AuthError::Credentials => "invalid_credentials",
            AuthError::Token => "invalid_token",
            AuthError::Stale => "stale_timestamp",
            AuthError::Signature => "invalid_signature",
            AuthError::Store(_) => "credential_store",
        };
        let mut err = ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string());
        if let AuthError::Header(h) = e {
            err = err.field(h);
        }
        err
    }
}
