//! (in progress)

use crate::api::http::Route;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    Vec::new()
}
