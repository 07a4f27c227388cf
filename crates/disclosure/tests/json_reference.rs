//! The scan against a reference JSON parser (serde_json) on random documents, written with
//! random whitespace and escapes: whenever the scan gives a value, it is the value
//! serde_json finds at that path; it refuses exactly the paths serde_json does not have, and
//! objects on the path whose keys are written with escapes (which could hide a duplicate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use disclosure::path::{Path, Segment};
use disclosure::scan::{scan_clear, ScanError, Shape};
use proptest::prelude::*;
use serde_json::Value;

/// Writes `v` as JSON with whitespace from `ws` (cycled) between tokens, and, when
/// `escape` is set, some strings and keys entirely as `\uXXXX` escapes; `escaped` collects
/// the objects one of whose keys it wrote escaped.
fn write(
    v: &Value,
    ws: &[u8],
    escape: bool,
    k: &mut usize,
    out: &mut String,
    escaped: &mut std::collections::HashSet<usize>,
) {
    let space = |out: &mut String, k: &mut usize| {
        let w = ws[*k % ws.len()];
        *k += 1;
        for _ in 0..(w % 3) {
            out.push([' ', '\n', '\t', '\r'][(w / 3 % 4) as usize]);
        }
    };
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (key, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, k);
                let esc = escape && *k % 5 == 0;
                // An empty key written "escaped" has no character to escape.
                if esc && !key.is_empty() {
                    escaped.insert(v as *const Value as usize);
                }
                string(key, esc, out);
                space(out, k);
                out.push(':');
                space(out, k);
                write(val, ws, escape, k, out, escaped);
                space(out, k);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, val) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, k);
                write(val, ws, escape, k, out, escaped);
                space(out, k);
            }
            out.push(']');
        }
        Value::String(s) => string(s, escape && *k % 3 == 0, out),
        other => out.push_str(&other.to_string()),
    }
}

fn string(s: &str, escape_some: bool, out: &mut String) {
    if !escape_some {
        out.push_str(&serde_json::to_string(s).unwrap());
        return;
    }
    out.push('"');
    for c in s.chars() {
        let mut buf = [0u16; 2];
        for u in c.encode_utf16(&mut buf) {
            out.push_str(&format!("\\u{u:04x}"));
        }
    }
    out.push('"');
}

/// Whether a key needs an escape in JSON.
fn needs_escape(key: &str) -> bool {
    serde_json::to_string(key).unwrap().contains('\\')
}

fn value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        "[a-z]{0,6}",
        "[ -~]{0,8}",
        "\\PC{0,5}",
        Just("quote\"back\\slash/\u{1}\n".to_string()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        (-1_000_000i64..1_000_000, 1u32..4).prop_map(|(m, e)| {
            serde_json::from_str(&format!("{}.{}", m, 10u32.pow(e))).unwrap()
        }),
        text.prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("name".to_string()),
        Just("user".to_string()),
        Just("x y".to_string()),
        Just("ß".to_string()),
        Just("".to_string()),
        Just("q\"k".to_string()),
    ];
    leaf.prop_recursive(5, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A path into `v` following `choices`, and whether it exists.
fn path_into(v: &Value, choices: &[u8], wild: bool) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut cur = v;
    for &c in choices {
        match cur {
            Value::Object(m) if !(m.is_empty() || wild && c % 4 == 0) => {
                let (k, next) = m.iter().nth(c as usize % m.len()).unwrap();
                out.push(Segment::Name(k.clone()));
                cur = next;
            }
            Value::Array(a) if !(a.is_empty() || wild && c % 4 == 0) => {
                let i = c as usize % a.len();
                out.push(Segment::Index(i as u32));
                cur = &a[i];
            }
            _ if wild => {
                out.push(if c % 2 == 0 {
                    Segment::Name(["a", "zz", "name"][c as usize % 3].to_string())
                } else {
                    Segment::Index(u32::from(c % 3))
                });
                break;
            }
            _ => break,
        }
    }
    out
}

/// What serde_json has at `path` in `doc`, and whether an object on the way (the containers
/// the scan searches) has a key written with an escape.
fn reference<'a>(
    doc: &'a Value,
    path: &[Segment],
    esc_keys: &dyn Fn(&Value) -> bool,
) -> (Option<&'a Value>, bool) {
    let mut cur = doc;
    let mut escaped_on_path = false;
    for seg in path {
        let next = match (seg, cur) {
            (Segment::Name(n), Value::Object(m)) => {
                escaped_on_path |= esc_keys(cur);
                m.get(n)
            }
            (Segment::Index(i), Value::Array(a)) => a.get(*i as usize),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return (None, escaped_on_path),
        }
    }
    (Some(cur), escaped_on_path)
}

fn check(
    doc: &Value,
    text: &str,
    seg: Vec<Segment>,
    written_escaped: &std::collections::HashSet<usize>,
) -> Result<(), TestCaseError> {
    let Ok(path) = Path::new(seg.clone()) else {
        return Ok(());
    };
    if path.check_matchable().is_err() {
        return Ok(());
    }
    let sh = Shape::new(&[(path.clone(), 4096)], 4096).unwrap();
    let got = scan_clear(&sh, text.as_bytes());
    // Objects with a key written with an escape: one that needs it, or one the writer
    // chose to escape.
    let esc_keys = |v: &Value| match v {
        Value::Object(m) => {
            m.keys().any(|k| needs_escape(k))
                || written_escaped.contains(&(v as *const Value as usize))
        }
        _ => false,
    };
    let (want, escaped_on_path) = reference(doc, &seg, &esc_keys);
    match (got, want) {
        (Err(e), Some(_)) if escaped_on_path => {
            prop_assert!(
                matches!(e, ScanError::EscapedKey { .. }),
                "{} at {} in {}",
                e,
                path,
                text
            );
        }
        (Ok(_), Some(_)) if escaped_on_path => {
            return Err(TestCaseError::fail(format!(
                "an escaped key on the path of {path} was not refused: {text}"
            )))
        }
        (Ok(r), Some(w)) => {
            let token: Value = serde_json::from_str(&text[r[0].clone()]).unwrap();
            prop_assert_eq!(&token, w, "path {} in {}", path, text);
        }
        (Ok(r), None) => {
            return Err(TestCaseError::fail(format!(
                "the scan found {:?} at {path}, serde_json has nothing there: {text}",
                &text[r[0].clone()]
            )))
        }
        (Err(e), Some(_)) => {
            return Err(TestCaseError::fail(format!(
                "the scan refused {path} ({e}) but serde_json has it: {text}"
            )))
        }
        (Err(_), None) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn the_scan_agrees_with_serde_json(
        doc in value(),
        ws in prop::collection::vec(any::<u8>(), 1..16),
        choices in prop::collection::vec(any::<u8>(), 1..6),
        escape in any::<bool>(),
        wild in any::<bool>(),
    ) {
        let mut text = String::new();
        let mut k = 0;
        let mut esc = std::collections::HashSet::new();
        write(&doc, &ws, escape, &mut k, &mut text, &mut esc);
        // The writer must produce what serde_json reads as the same document.
        let parsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&parsed, &doc);
        if !matches!(doc, Value::Object(_) | Value::Array(_)) {
            return Ok(());
        }
        check(&doc, &text, path_into(&doc, &choices, wild), &esc)?;
    }
}

#[test]
fn duplicates_serde_json_would_silently_resolve_are_refused() {
    // serde_json keeps the last of duplicate keys; the scan refuses the ambiguity wherever
    // it is on the path.
    for (doc, path) in [
        (r#"{"a":1,"a":2}"#, "$.a"),
        (r#"{"a":{"b":1},"a":{"b":2}}"#, "$.a.b"),
        (r#"{"x":{"a":1,"b":{},"a":3}}"#, "$.x.a"),
        (r#"[{"a":1,"a":1}]"#, "$[0].a"),
    ] {
        let v: Value = serde_json::from_str(doc).unwrap();
        assert!(v.is_object() || v.is_array());
        let sh = Shape::new(&[(Path::parse(path).unwrap(), 64)], 64).unwrap();
        let e = scan_clear(&sh, doc.as_bytes()).unwrap_err();
        assert!(matches!(e, ScanError::Duplicate { .. }), "{doc}: {e}");
    }
    // A duplicate elsewhere (not on the path) does not matter.
    let sh = Shape::new(&[(Path::parse("$.b").unwrap(), 64)], 64).unwrap();
    assert!(scan_clear(&sh, br#"{"a":{"c":1,"c":2},"b":3}"#).is_ok());
}

#[test]
fn keys_inside_strings_and_other_depths_are_not_keys() {
    let cases = [
        (
            r#"{"note":"{\"name\":\"Mallory\"}","name":"Alice"}"#,
            "$.name",
            Some(r#""Alice""#),
        ),
        (r#"{"x":{"name":"Mallory"}}"#, "$.name", None),
        (r#"{"x":["name","Mallory"]}"#, "$.name", None),
        (r#"{"a":"\\","name":"ok"}"#, "$.name", Some(r#""ok""#)),
        (r#"{"a":"\\\"","name":"ok2"}"#, "$.name", Some(r#""ok2""#)),
        (
            r#"{"list":[{"name":"A"},{"name":"B"}]}"#,
            "$.list[1].name",
            Some(r#""B""#),
        ),
        (
            r#"{"list":[[1,2],[3,[4,5]]]}"#,
            "$.list[1][1][0]",
            Some("4"),
        ),
        (r#"{"n":-12.50e+3}"#, "$.n", Some("-12.50e+3")),
        (
            r#"{"u":"\u00e9\ud83d\ude00"}"#,
            "$.u",
            Some(r#""\u00e9\ud83d\ude00""#),
        ),
        (r#"{"e":""}"#, "$.e", Some(r#""""#)),
        (r#"{"": 5}"#, "$['']", Some("5")),
    ];
    for (doc, path, want) in cases {
        let sh = Shape::new(&[(Path::parse(path).unwrap(), 64)], 64).unwrap();
        let got = scan_clear(&sh, doc.as_bytes())
            .ok()
            .map(|r| doc[r[0].clone()].to_string());
        assert_eq!(got.as_deref(), want, "{doc} at {path}");
    }
}

#[test]
fn malformed_bodies_are_refused() {
    for doc in [
        r#"{"name":"a"} {"name":"b"}"#,
        r#"{"name":"a"}]"#,
        "{\"name\":\"a\u{1}\"}",
        r#"{"name" "a"}"#,
        r#"{"name":"a""#,
        r#"{"name":["a"}"#,
        r#"{"name":"a"#,
        "",
        "   ",
        r#""just a string""#,
    ] {
        let sh = Shape::new(&[(Path::parse("$.name").unwrap(), 64)], 64).unwrap();
        assert!(scan_clear(&sh, doc.as_bytes()).is_err(), "{doc:?}");
    }
}
