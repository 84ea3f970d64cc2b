use serde_json::json;

use super::*;

#[test]
fn a_request_round_trips_with_its_unknown_fields() {
    let body = json!({
        "customerData": {
            "customerKeyData": {"organizationNumber": 800, "customerNumber": "0000000000000000000",
                "accountNumber": "0000000000000000000", "dualFlag": "N"},
            "ownerCoOwnerData": {"ownerData": {"nameLine1": "JOAO", "identificationNumber": "123",
                "dateOfBirth": "1985-07-14", "income": 5000, "cuit": "20374645497"}},
            "customerMiscellaneousData": {"vipStatus": 0}
        },
        "somethingNew": [1, 2]
    });
    let req: CustomerAdd = serde_json::from_value(body.clone()).unwrap();
    let key = &req.customer_data.customer_key_data;
    assert!(key.customer_number.unwrap().is_zero());
    let owner = req
        .customer_data
        .owner_co_owner_data
        .as_ref()
        .and_then(|o| o.owner_data.as_ref())
        .unwrap();
    assert_eq!(owner.name(), "JOAO");
    assert_eq!(owner.document(), Some("123"));
    assert_eq!(serde_json::to_value(&req).unwrap(), body);
}

#[test]
fn refusals_carry_their_code() {
    let e = serde_json::from_value::<PinValidation>(json!({
        "organizationNumber": 800, "cardNumber": "12345678901!", "currentPinBlock": "00",
        "keyAssociation": "IYY"}))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("card_not_found: "), "{e}");
    let e = serde_json::from_value::<CreditLimitUpdate>(json!({
        "organizationNumber": 800, "accountNumber": "1", "creditLimit": 0.001}))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("invalid_amount: "), "{e}");
    let e = serde_json::from_value::<MassIssueUpdate>(json!({
        "status": 1, "quantityToCreate": 1, "expiryDate": "2023-02-29"}))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("invalid_date: "), "{e}");
}

#[test]
fn embosser_fields_flatten_twice() {
    let body = json!({"organizationNumber": 800, "postToAccount": "0000000000000000042",
        "cardNumber": "", "typeOfCard": 2, "atmCashAmount": 150.5, "plasticId": "P1"});
    let req: EmbosserAdd = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(req.post_to_account.id(), 42);
    assert_eq!(req.embosser.type_of_card, Some(2));
    assert_eq!(
        req.embosser.limits.atm_cash_amount,
        Some(crate::api::domain::Money::from_minor(15_050))
    );
    assert_eq!(req.embosser.extra["plasticId"], "P1");
    assert_eq!(serde_json::to_value(&req).unwrap(), body);
}
