//! Numbers as a Python program holds them.

use tessera::{Map, Number, Value};

/// Rewrites the numbers of `data` as Python's `json.loads` and then
/// `json.dumps` would write them (`1E5` is `100000.0`, `-0` is `0`, `1e400`
/// is `Infinity`): the session Flask would hold, and the cookie it would sign,
/// for the same JSON.
pub(crate) fn as_python_reads_it(data: &mut Map) {
    for item in data.values_mut() {
        rewrite(item);
    }
}

fn rewrite(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(rewritten) = number(n) {
                *n = rewritten;
            }
        }
        Value::List(items) | Value::Tuple(items) => items.iter_mut().for_each(rewrite),
        Value::Dict(map) => as_python_reads_it(map),
        _ => {}
    }
}

/// The number as Python writes it, if that is other text.
fn number(number: &Number) -> Option<Number> {
    let text = number.as_str();
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return None;
    }
    // (The parser has refused an integer Python cannot read already.)
    if number.is_integer() {
        return (text == "-0").then(|| Number::from(0));
    }
    // Rust's parse rounds correctly, as Python's float() does; JSON number
    // text always parses (past f64's range to an infinity, as in Python).
    let value: f64 = text.parse().ok()?;
    let rewritten = Number::from_f64(value);
    (rewritten.as_str() != text).then_some(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_rewritten_as_python_writes_them() {
        let mut data: Map = match tessera::tagged::from_str_strict(
            r#"{"a": 1E5, "b": [0.10, -0, {"c": 1e300}], "d": 1e400, "e": 7, "f": 2.5, "g": -0.0,
                "h": 123456789012345678901234567890, "i": 123456789012345678901234567890.5}"#,
        ) {
            Ok(Value::Dict(map)) => map,
            other => panic!("{other:?}"),
        };
        as_python_reads_it(&mut data);
        assert_eq!(
            tessera::tagged::map_to_string(&data),
            r#"{"a":100000.0,"b":[0.1,0,{"c":1e+300}],"d":Infinity,"e":7,"f":2.5,"g":-0.0,"h":123456789012345678901234567890,"i":1.2345678901234568e+29}"#
        );
    }
}
