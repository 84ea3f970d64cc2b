//! The route table: every operation of the facade, gathered from the modules that
//! implement them. The router ([`super::server::router`]) and the OpenAPI document
//! ([`super::doc`]) are both built from this one list, so they cannot disagree.

use super::Route;

/// Every route.
pub fn all() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(crate::api::customers::routes());
    routes.extend(crate::api::accounts::routes());
    routes.extend(crate::api::embosser::routes());
    routes.extend(crate::api::card_ops::routes());
    routes.extend(crate::api::mass::routes());
    routes.extend(crate::api::portadores::routes());
    routes
}
