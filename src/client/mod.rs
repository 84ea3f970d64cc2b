//! The async client for `cofre hsm`: connection pool, pipelining, failover, typed calls.
//! Uses only [`crate::protocol`]; never imports `hsm` or `keys`.
