//! Property tests: any mutation of a valid input is judged without panicking, the same way
//! every time, and a mutated input the schema accepts is never allowed by a rule that did
//! not hold for it (spot-checked through determinism and fail-closed errors).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use ualink_policy::{DecisionKind, PolicyError};

/// JSON pointers of every leaf of `v`.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => o
            .iter()
            .for_each(|(k, e)| leaves(e, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, e)| leaves(e, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..4_000_000_000).prop_map(Value::from),
        "[a-zA-Z0-9_. -]{0,12}".prop_map(Value::from),
        "[0-9a-f]{96}".prop_map(Value::from),
        Just(json!("RUN")),
        Just(json!("sim")),
        Just(json!([])),
        Just(json!({})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_inputs_never_panic_and_replay_identically(
        kind_ix in 0usize..5,
        pick in any::<prop::sample::Index>(),
        new in scalar(),
    ) {
        let kind = DecisionKind::ALL[kind_ix];
        let mut v = input(kind);
        let mut ls = Vec::new();
        leaves(&v, String::new(), &mut ls);
        let ptr = pick.get(&ls).clone();
        *v.pointer_mut(&ptr).unwrap() = new;
        let e = engine();
        let first = e.evaluate(kind, &v);
        let second = e.evaluate(kind, &v);
        match (&first, &second) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(a.rules.len(), a.reasons.len());
                prop_assert!(!a.rules.is_empty());
                for r in &a.rules {
                    let ok = r == "default_deny"
                        || r == "allow"
                        || (a.allow && r.starts_with("allow."))
                        || (!a.allow && r.starts_with("deny."));
                    prop_assert!(ok, "{}", r);
                }
            }
            (Err(PolicyError::InvalidInput { .. }), Err(PolicyError::InvalidInput { .. })) => {}
            _ => prop_assert!(false, "{ptr}: {first:?} / {second:?}"),
        }
    }
}
