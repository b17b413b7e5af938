//! msgpack values <-> JSON values, so the rest of the process works with serde types only.

use nvim_rs::Value;
use serde_json::{Map, Number, Value as Json};

pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => {
            if let Some(n) = i.as_i64() {
                Json::Number(n.into())
            } else if let Some(n) = i.as_u64() {
                Json::Number(n.into())
            } else {
                Json::Null
            }
        }
        Value::F32(f) => Number::from_f64(*f as f64).map_or(Json::Null, Json::Number),
        Value::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(match s.as_str() {
            Some(s) => s.to_string(),
            None => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        }),
        Value::Binary(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(a) => {
            // Lua's empty table arrives as an empty array or map; both mean "nothing".
            Json::Array(a.iter().map(to_json).collect())
        }
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Value::String(s) => s.as_str().map(str::to_string).unwrap_or_default(),
                    other => to_json(other).to_string(),
                };
                out.insert(key, to_json(v));
            }
            Json::Object(out)
        }
        Value::Ext(_, _) => Json::Null,
    }
}

/// A typed value (render ops) as the msgpack value nvim-rs sends, without a JSON tree between:
/// encoded once with structs as maps (Lua sees tables with named fields), then read back.
pub fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, String> {
    let bytes = rmp_serde::to_vec_named(v).map_err(|e| e.to_string())?;
    rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())
}

pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_values() {
        let j = serde_json::json!({"a": [1, -2, 3.5, "x", null, true], "b": {"c": "d"}});
        assert_eq!(to_json(&from_json(&j)), j);
    }

    #[test]
    fn typed_render_ops_encode_as_the_json_lua_would_see() {
        use crate::ui::{Batch, Op};
        let b = Batch {
            ops: vec![
                Op::Lines {
                    chat: 3,
                    first: 0,
                    last: -1,
                    lines: vec!["a".into()],
                    keep: None,
                },
                Op::Hl {
                    chat: 3,
                    seq: 1,
                    from: 0,
                    spans: vec![(0, 1, 2, "BooMdList")],
                    code: vec![(1, 2, "lua".into())],
                },
                Op::Permission(crate::ui::PermissionView {
                    id: "p".into(),
                    chat: 3,
                    title: "ls".into(),
                    permission: "bash".into(),
                    patterns: vec!["x".into()],
                }),
            ],
        };
        let v = to_value(&b).expect("encodes");
        assert_eq!(to_json(&v), b.to_json());
        assert_eq!(to_json(&v)["ops"][2]["op"], "permission");
    }

    #[test]
    fn binary_strings_become_lossy_text() {
        let v = Value::Binary(vec![b'o', b'k', 0xff]);
        assert_eq!(to_json(&v), Json::String("ok\u{fffd}".into()));
    }
}
