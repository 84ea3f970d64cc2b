//! Mass card issue: `POST`/`GET /cards/mass-card-issue-L8V3` (the processor's "Mass
//! Card Issue Update" and "Inquiry"), cofre's `GET /cofre/v1/mass-issues/{id}` and
//! `GET /cofre/v1/mass-issues/{id}/embosser-file`, the background batch that makes the
//! cards through the daemon, and the embosser file for the card bureau
//! (`protocol/embosser-file.md`).
//!
//! Owns: `mass_issues` and `batch_cards` (`migrations/0003_mass_issue.sql`) and the files
//! in `bureau.output_dir`. Never sees a clear PAN, PIN or CVV: the daemon returns them
//! only encrypted under the bureau's transport key, and they go only to the file.
//!
//! Choices where the processor's documents are silent:
//! * A request is keyed by (tenant, `organizationNumber`, `logo`, `cardType`; 0 when not
//!   sent). `functionType` `A` (or empty) adds: if a request for the key has not
//!   started (`queued`) it is updated (quantity and body), else a new one is queued.
//!   `M` updates the queued request, `422 mass_issue_not_found` when there is none
//!   (VPL5SMC05S) and `422 mass_issue_started` when it started meanwhile. `status` is 1
//!   or 9 (VPL5SMC07E); 9 cancels the queued request. Other function types are
//!   `422 invalid_function_type`.
//! * `quantityToCreate` is 1 to 1,000,000 cards ([`MAX_QUANTITY`]) and `minimumQuantity`
//!   0 to 10,000 (kept, not acted on); outside: `422 quantity_out_of_range` naming the
//!   field. `expiryDate` is the cards' expiry (printed as YYMM): after today
//!   (VPL5SMC29E) and at most 20 years ahead, else `422 invalid_expiry_date`.
//! * Batches run one at a time per facade instance (a queue: a later request waits as
//!   `queued`, which is when it can still be updated), [`IN_FLIGHT`] cards in flight at
//!   the daemon, and progress is committed as soon as the previous commit is done (at
//!   most [`COMMIT_EVERY`] cards a commit). A card whose daemon calls fail 3 times fails
//!   the batch (`failed`, with the error code; no file is written). A batch cut by a
//!   restart or a dead instance stays `running` until its lease ends, then another
//!   instance (or the restarted one) takes it over and finishes it ([`lease`]).
//! * The answer's `outputArea` echoes the request, with `dateLastMaintain` (today) and
//!   `addStatus` 1 (new request), 2 (queued request updated) or 9 (cancelled). The spec
//!   has no field for the request's id, so cofre adds `massIssueId` (19 digits) and
//!   `massIssueState`; the inquiry returns them too, for the newest request of the key.
//! * The inquiry (`organizationNumber`, `logo`, `serviceType` = card type) answers the
//!   processor's card list: one card per batch card (`cardNumber` its PAN token padded
//!   to 19, `cardStatus` `0` and `isActive` false: stock without a cardholder), 50 a page
//!   (`page`, from 1, or `cursor` = the previous answer's `nextCursor`; cofre additions), `totalCardsCount` the cards made so far, plus
//!   `massIssueId`, `state`, `requested`, `issued`, `failed`, `fileName`.

mod batch;
mod embosser_file;
mod inquiry;
pub mod lease;
mod progress;
mod update;

use axum::http::Method;

use crate::api::call::Route;
use crate::api::domain::Date;
use crate::{handler, typed_handler_tx};
pub use lease::recover;

/// Most cards one request may ask for.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Cards in flight at the daemon during a batch.
pub const IN_FLIGHT: usize = 1024;
/// Cards per progress commit.
pub const COMMIT_EVERY: usize = 8192;

pub use crate::api::store::{BatchCard, MassIssue};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    const SPEC: &str = "/cards/mass-card-issue-L8V3";
    vec![
        Route::processor(Method::POST, SPEC, SPEC, typed_handler_tx!(update::add)),
        Route::processor(Method::GET, SPEC, SPEC, handler!(inquiry::inquiry)),
        Route::own(
            Method::GET,
            "/cofre/v1/mass-issues/{id}",
            progress::progress_doc,
            handler!(progress::progress),
        ),
        Route::own(
            Method::GET,
            "/cofre/v1/mass-issues/{id}/embosser-file",
            progress::file_doc,
            handler!(progress::embosser_file),
        ),
    ]
}

/// `expiryDate` as the cards' expiry `YYMM`: after `today` and at most 20 years ahead.
pub fn expiry_yymm(date: Date, today: Date) -> Option<String> {
    (date > today && date.year() <= today.year() + 20).then(|| date.expiry())
}

#[cfg(test)]
mod tests {
    use super::expiry_yymm;
    use crate::api::domain::Date;

    #[test]
    fn expiry_dates() {
        let d = |s: &str| Date::parse(s).unwrap();
        let today = d("2026-05-01");
        assert_eq!(expiry_yymm(d("2031-09-30"), today).as_deref(), Some("3109"));
        assert_eq!(expiry_yymm(d("2026-05-01"), today), None);
        assert_eq!(expiry_yymm(d("2026-04-30"), today), None);
        assert_eq!(expiry_yymm(d("2047-01-01"), today), None);
        assert_eq!(expiry_yymm(d("2046-12-31"), today).as_deref(), Some("4612"));
    }
}
