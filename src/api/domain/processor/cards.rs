//! Cards: embosser records, activation, PAN inquiry, card action, the card operations
//! (security codes, dynamic CVV2, PIN tries, validation and status, block code, card
//! status, credit limit) and the mass issue.

use serde::{Deserialize, Serialize};

use super::Extra;
use crate::api::domain::{CardRef, Date, Money, Organization, RecordNumber, blank_or_number};

/// The purchase limits of an embosser record (major units, exact).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PurchaseLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atm_cash_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atm_cash_single_transaction_limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_the_counter_cash_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_the_counter_cash_single_transaction_limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retail_purchase_amt: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retail_purchase_single_transaction_limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_purchase_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_purchase_single_transaction_limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ic_amount_limit_single_transaction: Option<Money>,
}

impl PurchaseLimits {
    /// Each limit with its field name.
    pub fn each(&self) -> [(&'static str, Option<Money>); 9] {
        [
            ("atmCashAmount", self.atm_cash_amount),
            (
                "atmCashSingleTransactionLimit",
                self.atm_cash_single_transaction_limit,
            ),
            (
                "overTheCounterCashAmount",
                self.over_the_counter_cash_amount,
            ),
            (
                "overTheCounterCashSingleTransactionLimit",
                self.over_the_counter_cash_single_transaction_limit,
            ),
            ("retailPurchaseAmt", self.retail_purchase_amt),
            (
                "retailPurchaseSingleTransactionLimit",
                self.retail_purchase_single_transaction_limit,
            ),
            ("internetPurchaseAmount", self.internet_purchase_amount),
            (
                "internetPurchaseSingleTransactionLimit",
                self.internet_purchase_single_transaction_limit,
            ),
            (
                "icAmountLimitSingleTransaction",
                self.ic_amount_limit_single_transaction,
            ),
        ]
    }
}

/// What an embosser record says about the card to make (embosser add, and an instant
/// card's `embosserData`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbosserFields {
    /// `typeOfCard`: 0/1 credit, 2 debit, 3 prepaid, 4 digital wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_of_card: Option<i64>,
    /// `deviceIndicator`: `D`, `V` or `W` make a digital-wallet card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_indicator: Option<String>,
    /// `digitalCardFlag` (instant card): 1 digital wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital_card_flag: Option<i64>,
    /// `embossedName1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embossed_name1: Option<String>,
    /// `name1`: the embossed name when `embossedName1` is blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name1: Option<String>,
    /// `expirationDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Date>,
    /// `posServiceCode` (0: the product's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_service_code: Option<i64>,
    /// Purchase limits.
    #[serde(flatten)]
    pub limits: PurchaseLimits,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/embosser` (`/cards/embosser/l8vf`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbosserAdd {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `postToAccount`: the account.
    pub post_to_account: RecordNumber,
    /// `cardNumber`: must be blank or zeros (cofre draws the PAN).
    #[serde(default)]
    pub card_number: String,
    /// `customerNumber` (blank: the account's owner).
    #[serde(
        default,
        deserialize_with = "blank_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_number: Option<RecordNumber>,
    /// `cardSequence` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence: Option<i64>,
    /// The card.
    #[serde(flatten)]
    pub embosser: EmbosserFields,
}

/// `PUT /cards/activation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardActivation {
    /// `organizationNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_number: Option<Organization>,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `serviceType`: A, S, T, U or I.
    pub service_type: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/embosser/card-pan-l8v2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PanInquiry {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardSequence` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence: Option<i64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PUT /cards/embosser/cardAction-L8V2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardAction {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardSequence` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence: Option<i64>,
    /// `cardAction`: 1, 2, 3, 4 or 6.
    pub card_action: i64,
    /// `numberCardsRequested` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_cards_requested: Option<i64>,
    /// `numberCardsReturned` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_cards_returned: Option<i64>,
    /// `randomPin`: 1 a new random PIN, 0 the card's PIN carried over.
    pub random_pin: i64,
    /// `cardActionReason`: L, S, D, E or blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_action_reason: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/v1/pin/codes` (`/cards/pin/security-codes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardCodes {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `keyAssociation`.
    pub key_association: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/pin/dynamic-values`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicValues {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `keyAssociation`.
    pub key_association: String,
    /// `disableDCVV2`: `Y` turns dCVV2 off.
    #[serde(rename = "disableDCVV2")]
    pub disable_dcvv2: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/pin/invalid-attempts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidAttempts {
    /// `organizationNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_number: Option<Organization>,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardSequenceNumber` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence_number: Option<i64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/pin/validation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinValidation {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `currentPinBlock`: ISO 9564 format 0 under the association's ZPK, hex.
    pub current_pin_block: String,
    /// `keyAssociation`.
    pub key_association: String,
    /// `channel` (recorded with a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PUT /cards/embosser/block`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCodeUpdate {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardSequence` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence: Option<i64>,
    /// `functionCode`: B block, U unblock.
    pub function_code: String,
    /// `blockCode`: one letter or digit.
    #[serde(default)]
    pub block_code: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PUT /cards/pin/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinStatusUpdate {
    /// `organizationNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_number: Option<Organization>,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardSequenceNumber` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_sequence_number: Option<i64>,
    /// `serviceFunctionCode`: B block, U unblock the PIN.
    pub service_function_code: String,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PUT /cards/status-L8V1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardStatusUpdate {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `cardNumber`.
    pub card_number: CardRef,
    /// `cardStatus`: 0 inactive, 1 active, 2 blocked, 3 cancelled.
    pub card_status: i64,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `PUT /cards/credit-limit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditLimitUpdate {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `accountNumber`: a card (its own limit) or an account number.
    pub account_number: String,
    /// `foreignUseIndicator` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_use_indicator: Option<String>,
    /// `creditLimit`.
    pub credit_limit: Money,
    /// `creditLimitBeforeUpdate`: if sent, must be the current limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit_before_update: Option<Money>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /cards/mass-card-issue-L8V3`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MassIssueUpdate {
    /// `organizationNumber`.
    #[serde(default)]
    pub organization_number: Organization,
    /// `logo`.
    #[serde(default)]
    pub logo: i64,
    /// `cardType`.
    #[serde(default)]
    pub card_type: i64,
    /// `functionType`: A (or blank) add, M modify.
    #[serde(default)]
    pub function_type: String,
    /// `status`: 1 active, 9 cancel.
    pub status: i64,
    /// `minimumQuantity`.
    #[serde(default)]
    pub minimum_quantity: i64,
    /// `quantityToCreate`.
    pub quantity_to_create: i64,
    /// `expiryDate`: the cards' expiry.
    pub expiry_date: Date,
    /// `prepaidCardFlag`: 0 or 1.
    #[serde(default)]
    pub prepaid_card_flag: i64,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /cards/mass-card-issue-L8V3`'s query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassInquiry {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `logo`.
    pub logo: i64,
    /// `serviceType`: the card type.
    pub service_type: i64,
    /// `page`, from 1.
    pub page: i64,
    /// `cursor`: the previous answer's `nextCursor` (takes precedence over `page`).
    pub cursor: Option<i64>,
}
