//! The cardholder API `/api/v1/portadores` (Brazilian issuers): a portador is a customer
//! with its account(s) and card(s) in the same records as the processor operations;
//! its fields are kept in the customer's body under the document's names.
//!
//! Every operation takes a typed request (`input`: every invalid field listed), reads
//! and asks the daemon outside the writer's transaction, and commits its changes with
//! its answer (`Ctx::commit`), re-reading inside the transaction what it changes. Every
//! error of the tree, its unknown paths and methods included, is RFC 9457
//! problem+json in Portuguese with an English `code` (`Style::ProblemPt`).
//!
//! Module map: `input` (typed fields, checks), `regras` (single-field rules), `pessoa`
//! and `contato` (a person's,
//! addresses' and phones' rules), `common` (loading a portador: titular or dependent),
//! `visao` (the views), `ciclo` (the billing cycle), `cadastro` (account opening PF/PJ),
//! `busca` (lookups), `mudancas` (changes, limits, cycle, product), `bloqueios`,
//! `vipagem`, `dependentes`, `senhas`, `historico` (history, occurrences),
//! `inadimplencias` (the billing system's delinquency feed), `telefones`, `sms` and `sms_http` (the outbox, its worker, the HTTP
//! gateway), `referencias` (reference data and the tree's route helpers).

pub mod abertura;
pub mod adicionais;
pub mod bloqueios;
pub mod busca;
pub mod cadastro;
pub mod cadastro_pj;
pub mod ciclo;
pub mod common;
pub mod confirmacao;
pub mod contato;
pub mod dependentes;
pub mod historico;
pub mod inadimplencias;
pub mod input;
pub mod mudancas;
pub mod pessoa;
pub mod referencias;
pub mod regras;
pub mod senha_sms;
pub mod senhas;
pub mod sms;
pub mod sms_http;
pub mod telefones;
pub mod vinculos;
pub mod vipagem;
pub mod visao;

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
    r.extend(inadimplencias::routes());
    r.extend(telefones::routes());
    r.extend(referencias::routes());
    r
}

/// The cardholder API's path prefix.
pub const PREFIX: &str = "/api/v1/portadores";

/// Whether `path` is in the cardholder API's tree (its unknown paths and methods answer
/// in its error shape).
pub fn owns_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}
