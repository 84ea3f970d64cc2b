//! Validator tests against the processor's own schemas.

use serde_json::{Value, json};

use super::*;

/// A value built from a schema's `example`s (objects get every property). The spec's
/// own examples sometimes break its own rules (a 19-character example for a 17-character
/// field); those are replaced by a synthesised value that fits.
fn example(spec: &Spec, schema: &Value, depth: usize) -> Value {
    let s = spec.resolve(schema);
    if depth > 20 {
        return Value::Null;
    }
    let fits = |v: &Value| spec.validate(s, v).is_empty();
    if let Some(e) = s.get("example")
        && fits(e)
        && !e.is_object()
    {
        return e.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    match s.get("type").and_then(Value::as_str) {
        Some("array") => json!([example(spec, &s["items"], depth + 1)]),
        Some("string") => {
            let min = s
                .get("minLength")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1) as usize;
            let candidates = [
                "2026-01-31".to_owned(),
                "0".repeat(min),
                "X".repeat(min),
                "P".into(),
                "Y".into(),
                "A".into(),
                "a@b.co".into(),
                "0".repeat(6),
                "0".repeat(11),
            ];
            candidates
                .into_iter()
                .map(Value::from)
                .find(|v| fits(v))
                .unwrap_or(Value::from("X"))
        }
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(true),
        _ => {
            let mut m = Map::new();
            for (k, v) in s
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                m.insert(k.clone(), example(spec, v, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_owned());
                }
                refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_subset_loads_and_every_reference_resolves() {
    let spec = Spec::firstvision();
    assert_eq!(spec.paths().len(), 18);
    let mut all = Vec::new();
    refs(spec.document(), &mut all);
    assert!(all.len() > 100);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            spec.document()["components"]["schemas"].get(name).is_some(),
            "{r}"
        );
    }
    assert!(spec.request_schema("/customer/l8v2", "post").is_some());
    assert!(
        spec.response_schema("/customer/l8v2", "post", 200)
            .is_some()
    );
}

#[test]
fn bodies_built_from_the_specs_own_examples_validate() {
    let spec = Spec::firstvision();
    let mut checked = 0;
    for path in spec.paths() {
        for method in ["post", "put"] {
            if let Some(schema) = spec.request_schema(path, method) {
                let body = example(spec, schema, 0);
                let v = spec.validate(schema, &body);
                assert!(v.is_empty(), "{method} {path}: {:?}", &v[..v.len().min(5)]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "{checked}");
}

#[test]
fn each_rule_is_enforced_with_a_pointer() {
    let spec = Spec::firstvision();
    let schema = spec.request_schema("/account/add-L8V3", "post").unwrap();
    let good = example(spec, schema, 0);
    assert!(spec.validate(schema, &good).is_empty());
    let first_violation = |mutate: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        mutate(&mut b);
        spec.validate(schema, &b)
    };
    // Wrong type, too long, missing required, int32 overflow.
    let v = first_violation(&|b| b["accountData"]["organization"] = json!("abc"));
    assert_eq!(v[0].pointer, "/accountData/organization");
    assert_eq!(v[0].rule, "must be an integer");
    let v = first_violation(&|b| b["accountData"]["accountNumber"] = json!("1".repeat(20)));
    assert!(v.iter().any(|x| x.rule.contains("longer than 19")), "{v:?}");
    let v = first_violation(&|b| {
        b["accountData"]
            .as_object_mut()
            .unwrap()
            .remove("billingLevel");
    });
    assert!(
        v.iter()
            .any(|x| x.pointer == "/accountData/billingLevel" && x.rule == "is required"),
        "{v:?}"
    );
    let v = first_violation(&|b| b["accountData"]["organization"] = json!(1_i64 << 40));
    assert!(v.iter().any(|x| x.rule.contains("32 bits")), "{v:?}");
    let v = first_violation(&|b| b["accountData"] = json!([1]));
    assert!(v.iter().any(|x| x.rule == "must be an object"), "{v:?}");
    // Unknown fields are allowed (kept), as OpenAPI says by default.
    let v = first_violation(&|b| b["accountData"]["somethingNew"] = json!(1));
    assert!(v.is_empty());
}

#[test]
fn dates_and_patterns() {
    let spec = Spec::parse(
        "components:\n  schemas:\n    T:\n      type: object\n      properties:\n        d:\n          type: string\n          format: date\n        p:\n          type: string\n          pattern: ^(P|C){1}$\n",
    )
    .unwrap();
    let schema = json!({"$ref": "#/components/schemas/T"});
    assert!(
        spec.validate(&schema, &json!({"d": "2026-11-25", "p": "C"}))
            .is_empty()
    );
    // Calendar-checked: days that do not exist are refused.
    for bad in [
        "2026-13-25",
        "2023-02-31",
        "2023-02-29",
        "2024-02-30",
        "2024-04-31",
    ] {
        assert_eq!(spec.validate(&schema, &json!({"d": bad}))[0].pointer, "/d");
    }
    assert!(
        spec.validate(&schema, &json!({"d": "2024-02-29"}))
            .is_empty()
    );
    assert_eq!(spec.validate(&schema, &json!({"p": "X"}))[0].pointer, "/p");
}

#[test]
fn coherent_enums_are_enforced_and_self_contradicting_ones_are_not() {
    let spec = Spec::parse(
        "components:\n  schemas:\n    T:\n      type: object\n      properties:\n        e:\n          type: string\n          enum: [A, B]\n        n:\n          type: integer\n          enum: [null]\n        y:\n          type: string\n          maxLength: 1\n          enum: ['Y,N']\n",
    )
    .unwrap();
    let schema = json!({"$ref": "#/components/schemas/T"});
    assert!(
        spec.validate(&schema, &json!({"e": "A", "n": 3, "y": "Y"}))
            .is_empty()
    );
    let v = spec.validate(&schema, &json!({"e": "C"}));
    assert_eq!(
        (
            v[0].pointer.as_str(),
            v[0].rule.starts_with("must be one of")
        ),
        ("/e", true)
    );
    assert_eq!(spec.validate(&schema, &json!({"y": "YN"}))[0].pointer, "/y");
}

#[test]
fn numbers_are_exact_amounts() {
    let spec = Spec::parse(
        "components:\n  schemas:\n    T:\n      type: object\n      properties:\n        a:\n          type: number\n        l:\n          type: array\n          items:\n            type: number\n",
    )
    .unwrap();
    let schema = json!({"$ref": "#/components/schemas/T"});
    assert!(
        spec.amount_violations(
            &schema,
            &json!({"a": 1234.5, "l": [0, -3.25, 100000000000.0]})
        )
        .is_empty()
    );
    for (bad, at) in [
        (json!({"a": 0.001}), "/a"),
        (json!({"a": 1234.567}), "/a"),
        (json!({"a": 100000000000.01}), "/a"),
        (json!({"l": [1, 2.125]}), "/l/1"),
    ] {
        let v = spec.amount_violations(&schema, &bad);
        assert_eq!(v.len(), 1, "{bad}");
        assert_eq!(v[0].pointer, at);
    }
}

#[test]
fn operations_with_request_body_lists_json_bodies_only() {
    let spec = Spec::parse(
        r#"
paths:
  /a:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object}
    get:
      responses: {}
  /token:
    post:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: {type: object}
  /b:
    parameters: []
    put:
      requestBody:
        content:
          application/json:
            schema: {type: string}
"#,
    )
    .unwrap();
    let mut ops = spec.operations_with_request_body();
    ops.sort_unstable();
    assert_eq!(ops, [("/a", "post"), ("/b", "put")]);
}
