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
    /// The cardholder API (`/api/v1/portadores`, for Brazilian issuers): RFC 9457 problem
    /// details with `title` and `detail` in Portuguese, every invalid field listed.
    ProblemPt,
}

impl Style {
    /// Whether errors are RFC 9457 `application/problem+json`.
    pub fn is_problem(self) -> bool {
        matches!(self, Style::Problem | Style::ProblemPt)
    }
}

/// One invalid field of a request (RFC 9457 `invalid-params`): its name in the
/// operation's notation, a stable code and a short reason (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParam {
    /// The field (`cpf`, `enderecoResidencial.cep`, `adicionais[0].cpf`).
    pub name: String,
    /// Stable code (`required`, `invalid_type`, `too_long`, `check_digits`, ...).
    pub code: &'static str,
    /// A short reason.
    pub reason: String,
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
    /// Every invalid field, when the request broke several rules (problem+json
    /// `invalid-params`; the first is also `field`).
    pub invalid: Vec<InvalidParam>,
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
            invalid: Vec::new(),
        }
    }

    /// A 422 listing every invalid field (the first is also `field`).
    pub fn invalid_fields(
        code: &'static str,
        message: impl Into<String>,
        params: Vec<InvalidParam>,
    ) -> Self {
        let mut e = Self::unprocessable(code, message);
        e.field = params.first().map(|p| p.name.clone());
        e.invalid = params;
        e
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
                let title = self.status.canonical_reason().unwrap_or("Error");
                self.problem(title, &self.message)
            }
            Style::ProblemPt => {
                let detail = pt::detail(self);
                self.problem(pt::title(self.status), &detail)
            }
        }
    }
}

impl ApiError {
    fn problem(&self, title: &str, detail: &str) -> (StatusCode, &'static str, String) {
        let mut body = json!({
            "type": format!("urn:cofre:problem:{}", self.code),
            "title": title,
            "status": self.status.as_u16(),
            "detail": detail,
            "code": self.code,
        });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
            let params: Vec<serde_json::Value> = if self.invalid.is_empty() {
                vec![json!({"name": f, "code": self.code, "reason": detail})]
            } else {
                self.invalid
                    .iter()
                    .map(|p| json!({"name": p.name, "code": p.code, "reason": p.reason}))
                    .collect()
            };
            body["invalid-params"] = json!(params);
        }
        (self.status, "application/problem+json", body.to_string())
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

/// The cardholder API's Portuguese texts: titles by status, and the detail of the
/// refusals that come from the edge and the store (whose own messages are English);
/// the cardholder modules write their messages in Portuguese themselves.
mod pt {
    use axum::http::StatusCode;

    use super::ApiError;

    /// The problem's title.
    pub(super) fn title(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "Requisição inválida",
            401 => "Não autenticado",
            403 => "Acesso negado",
            404 => "Não encontrado",
            405 => "Método não permitido",
            409 => "Conflito",
            413 => "Corpo grande demais",
            422 => "Dados inválidos",
            429 => "Limite de envios atingido",
            502 => "HSM inacessível",
            503 => "Serviço indisponível",
            _ => "Erro interno",
        }
    }

    /// The problem's detail: the Portuguese text of an edge or store code, else the
    /// error's own message.
    pub(super) fn detail(e: &ApiError) -> String {
        let field = e.field.as_deref().unwrap_or("");
        let fixed = match e.code {
            "body_too_large" => "O corpo da requisição excede o tamanho máximo.",
            "missing_header" => return format!("Cabeçalho ausente ou inválido: {field}."),
            "invalid_credentials" => "Credenciais inválidas.",
            "invalid_token" => "Token inválido ou expirado.",
            "stale_timestamp" => "O Timestamp está fora da janela de 5 minutos.",
            "invalid_signature" => "A assinatura (Signature) não confere.",
            "credential_store" => "Credenciais indisponíveis.",
            "invalid_json" => "O corpo não é um JSON válido.",
            "invalid_query" => "A query string está malformada.",
            "request_in_progress" => "A primeira requisição com este id ainda está em andamento.",
            "request_id_reused" => "Este id de requisição já foi usado para outra requisição.",
            "superseded" => "Outra chamada registrou esta requisição primeiro.",
            "internal" => "Erro interno.",
            "hsm_unavailable" => "O HSM não pode atender agora.",
            "no_such_path" => "Não há operação neste caminho.",
            "method_not_allowed" => "Este caminho não aceita este método.",
            "customer_not_found" => "Cliente não encontrado.",
            "account_not_found" => "Conta não encontrada.",
            "card_not_found" => "Cartão não encontrado.",
            "not_found" => "Registro não encontrado.",
            "duplicate" => "Já existe um registro com esta chave.",
            "rule_violation" => "A operação viola uma regra dos registros.",
            _ => return e.message.clone(),
        };
        fixed.to_owned()
    }
}
