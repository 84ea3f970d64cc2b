//! Customers and accounts: customer add, update and activation; account add and the
//! instant account and card.

use serde::{Deserialize, Serialize};

use super::Extra;
use super::cards::EmbosserFields;
use crate::api::domain::{CardRef, Date, Money, Organization, RecordNumber, blank_or_number};

/// `POST /customer` (`/customer/l8v2`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerAdd {
    /// The customer.
    pub customer_data: CustomerData,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customerData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerData {
    /// `customerKeyData`.
    pub customer_key_data: CustomerKey,
    /// `ownerCoOwnerData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_co_owner_data: Option<OwnerCoOwner>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customerKeyData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerKey {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `customerNumber`: the number wanted; all zeros or blank asks cofre for one.
    #[serde(
        default,
        deserialize_with = "blank_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_number: Option<RecordNumber>,
    /// `accountNumber` (echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ownerCoOwnerData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerCoOwner {
    /// `ownerData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_data: Option<Person>,
    /// Other fields (the co-owner).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A person's names, document and birth date (owner data, or a customer update).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// `nameLine1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_line1: Option<String>,
    /// `firstName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// `middleName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// `lastName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// `identificationNumber`: the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification_number: Option<String>,
    /// `cuit`: the document when `identificationNumber` is blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuit: Option<String>,
    /// `dateOfBirth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<Date>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

fn filled(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Person {
    /// `nameLine1`, else first, middle and last names joined (empty: none given).
    pub fn name(&self) -> String {
        if let Some(n) = filled(&self.name_line1) {
            return n.to_owned();
        }
        [&self.first_name, &self.middle_name, &self.last_name]
            .into_iter()
            .filter_map(filled)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The document as sent: `identificationNumber`, else `cuit`.
    pub fn document(&self) -> Option<&str> {
        filled(&self.identification_number).or_else(|| filled(&self.cuit))
    }
}

/// `PUT /customer` (`/customer/`): demographic changes; `status` 1 also activates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerUpdate {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `customerNumber`: a customer number, or a card of the customer.
    pub customer_number: String,
    /// `status`: 1 active (and activates the customer's new cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// The names.
    #[serde(flatten)]
    pub person: Person,
}

/// `POST /customer/activation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerActivation {
    /// `customerActivationData`.
    pub customer_activation_data: ActivationData,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customerActivationData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationData {
    /// `customerActivationKeyData`.
    pub customer_activation_key_data: ActivationKey,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customerActivationKeyData`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationKey {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `customerNumber`.
    pub customer_number: RecordNumber,
    /// `accountNumber`.
    pub account_number: RecordNumber,
    /// `panToken`: the card activated.
    pub pan_token: CardRef,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /account` (`/account/add-L8V3`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAdd {
    /// `accountData`.
    pub account_data: AccountData,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `accountData` of an account add.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountData {
    /// `customerNumber`: the owner.
    pub customer_number: RecordNumber,
    /// `organization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// `logo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<i64>,
    /// `creditLimit` (absent: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<Money>,
    /// `billingCycle`: the cycle day, 1-31 (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_cycle: Option<i64>,
    /// `accountNumber`: the number wanted (blank or zeros: assign one).
    #[serde(
        default,
        deserialize_with = "blank_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_number: Option<RecordNumber>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /account/v2/instantCard`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstantCard {
    /// `organizationNumber`.
    pub organization_number: Organization,
    /// `logo`.
    pub logo: i64,
    /// `customerNumber`.
    pub customer_number: RecordNumber,
    /// `accountCreateFlag`: `Y` creates the account, `N` uses `accountData.accountNumber`.
    pub account_create_flag: String,
    /// `accountData`.
    #[serde(default)]
    pub account_data: InstantCardAccount,
    /// `embosserData`.
    #[serde(default)]
    pub embosser_data: EmbosserFields,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `accountData` of an instant card.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstantCardAccount {
    /// `accountNumber`.
    #[serde(
        default,
        deserialize_with = "blank_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_number: Option<RecordNumber>,
    /// `creditLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<Money>,
    /// `billingCycle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_cycle: Option<i64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}
