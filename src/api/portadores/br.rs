//! The Brazilian rules of [`crate::api::domain::br`], and their refusal at the edge: a
//! 422 problem naming the field ([`field_error`]).

pub use crate::api::domain::br::*;

use crate::api::call::ApiError;

/// A 422 problem naming `field`.
pub fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_field", message).field(field)
}
