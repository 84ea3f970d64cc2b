//! The cardholder API `/api/v1/portadores` (Brazilian issuers): a portador is a customer
//! with its account(s) and card(s) in the same records as the processor operations; the
//! Portuguese fields are kept in the customer's body. Errors are RFC 9457 problem+json.
//!
//! Module map: `common` (loading a tenant's portador, shared helpers), `br` (CPF, CNPJ,
//! CEP, UF, dates, money, name folding), `cadastro` (account opening PF/PJ), `busca`
//! (lookups), `mudancas` (changes, limits and their history, cycle, product);
//! `bloqueios`, `vipagem`, `dependentes`, `senhas`, `historico`, `telefones`,
//! `referencias`.

pub mod bloqueios;
pub mod br;
pub mod busca;
pub mod cadastro;
pub mod common;
pub mod dependentes;
pub mod historico;
pub mod mudancas;
pub mod referencias;
pub mod senhas;
pub mod telefones;
pub mod vipagem;

use crate::api::call::Route;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    let mut r = Vec::new();
    r.extend(cadastro::routes());
    r.extend(busca::routes());
    r.extend(mudancas::routes());
    r.extend(bloqueios::routes());
    r.extend(vipagem::routes());
    r.extend(dependentes::routes());
    r.extend(senhas::routes());
    r.extend(historico::routes());
    r.extend(telefones::routes());
    r.extend(referencias::routes());
    r
}
