//! (in progress)

use super::http::Route;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    Vec::new()
}
