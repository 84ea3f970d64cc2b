//! The route table: every operation of the facade, gathered from the modules that
//! implement them. The router ([`super::server::router`]) and the OpenAPI document
//! ([`super::doc`]) are both built from this one list, so they cannot disagree.

use super::http::Route;

/// Every route.
pub fn all() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(super::customers::routes());
    routes.extend(super::accounts::routes());
    routes.extend(super::embosser::routes());
    routes.extend(super::card_ops::routes());
    routes.extend(super::mass::routes());
    routes.extend(super::portadores::routes());
    routes
}
