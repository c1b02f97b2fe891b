//! Reading the Python repr that sosw 0.7 stored as a closed task's `payload` (bug B9), back into JSON.
//!
//! sosw 0.7's `archive_task` wrote the payload it had decoded into a dict through its `S` mapper, i.e.
//! `str(dict)`: `{'word': 'dead', 'count': 2}`. That text is not JSON, and a worker cannot read it. This
//! module parses it as data, never as code: a small parser for the Python literals that `repr` of a
//! JSON-decoded value can produce (dicts with string keys, lists, strings in either quote style with
//! their escapes, integers, floats, `True`, `False` and `None`), plus tuples (read as arrays), which
//! `repr` can write although a JSON-decoded payload never holds one. Anything else (sets, bytes, names,
//! calls, operators, `inf`/`nan`, integers beyond 64 bits, lone surrogates, nesting deeper than
//! [`MAX_DEPTH`]) is an error naming the offset, never a panic.

use std::fmt;

use serde_json::{Map, Number, Value};

/// How deep containers may nest (serde_json's own parser stops at 128 too).
pub const MAX_DEPTH: usize = 128;

/// Why a text is not a Python literal this parser reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    /// Byte offset in the text where the problem was found.
    pub offset: usize,
    /// What was wrong there.
    pub message: String,
}

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for LiteralError {}

/// Parses `text`, the repr of one Python value, into JSON.
pub fn parse(text: &str) -> Result<Value, LiteralError> {
    let mut p = Parser { text, pos: 0 };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> LiteralError {
        LiteralError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, LiteralError> {
        match self.peek() {
            None => Err(self.err("expected a value, found the end of the text")),
            Some(b'{') => self.dict(depth + 1),
            Some(b'[') => self.sequence(depth + 1, b']').map(Value::Array),
            Some(b'(') => self.tuple(depth + 1),
            Some(b'\'' | b'"') => self.string().map(Value::String),
            Some(b'-' | b'+' | b'0'..=b'9' | b'.') => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.name(),
            Some(_) => Err(self.err(format!(
                "unexpected `{}`: not a Python literal",
                self.rest().chars().next().unwrap_or('?')
            ))),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), LiteralError> {
        if depth > MAX_DEPTH {
            Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")))
        } else {
            Ok(())
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, LiteralError> {
        self.check_depth(depth)?;
        self.pos += 1; // `{`
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Object(map));
            }
            let key = match self.peek() {
                Some(b'\'' | b'"') => self.string()?,
                _ => {
                    return Err(self.err(
                        "expected a string key: a JSON payload's dicts have string keys only",
                    ));
                }
            };
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after a dict key (a set is not a payload)"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}` in a dict")),
            }
        }
    }

    /// The items of a list (`[...]`) or of a tuple's remainder, up to `close`.
    fn sequence(&mut self, depth: usize, close: u8) -> Result<Vec<Value>, LiteralError> {
        self.check_depth(depth)?;
        self.pos += 1; // `[` or `(`
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(self.err(format!(
                        "expected `,` or `{}` in a {}",
                        close as char,
                        if close == b']' { "list" } else { "tuple" }
                    )));
                }
            }
        }
    }

    /// `()`, `(x,)`, `(x, y)` are tuples (arrays here); `(x)` is just `x`, as in Python.
    fn tuple(&mut self, depth: usize) -> Result<Value, LiteralError> {
        self.check_depth(depth)?;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(Value::Array(Vec::new()));
        }
        let first = self.value(depth)?;
        self.skip_ws();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok(first)
            }
            Some(b',') => {
                // Parse the rest as a sequence starting at this comma.
                let mut items = vec![first];
                items.extend(self.sequence(depth, b')')?);
                Ok(Value::Array(items))
            }
            _ => Err(self.err("expected `,` or `)` in a tuple")),
        }
    }

    fn name(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let word = self.text.get(start..self.pos).unwrap_or("");
        let value = match word {
            "True" => Value::Bool(true),
            "False" => Value::Bool(false),
            "None" => Value::Null,
            "inf" | "nan" => {
                self.pos = start;
                return Err(self.err(format!(
                    "`{word}` is not a finite number: JSON has no such value"
                )));
            }
            _ if matches!(self.peek(), Some(b'\'' | b'"')) => {
                self.pos = start;
                return Err(self.err(format!(
                    "a `{word}`-prefixed string (bytes or raw text) is not something sosw 0.7 wrote for a payload"
                )));
            }
            _ => {
                self.pos = start;
                return Err(self.err(format!(
                    "`{word}` is a name, not a literal (only True, False and None are read; nothing is evaluated)"
                )));
            }
        };
        Ok(value)
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let negative = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                true
            }
            Some(b'+') => {
                self.pos += 1;
                false
            }
            _ => false,
        };
        let body_start = self.pos;
        let mut is_float = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => self.pos += 1,
                b'.' => {
                    is_float = true;
                    self.pos += 1;
                }
                b'e' | b'E' => {
                    is_float = true;
                    self.pos += 1;
                    if let Some(b'+' | b'-') = self.peek() {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let body = self.text.get(body_start..self.pos).unwrap_or("");
        if let Some(c) = self.peek()
            && (c.is_ascii_alphabetic() || c == b'_')
        {
            // `inf` after a sign, `1j`, `0x1f`, `1_000`: none of them comes from a JSON payload.
            if body.is_empty() && self.rest().starts_with("inf") {
                self.pos = start;
                return Err(self.err("`inf` is not a finite number: JSON has no such value"));
            }
            return Err(self.err("not a decimal number sosw 0.7 could have written for a payload"));
        }
        if !body.bytes().any(|b| b.is_ascii_digit()) {
            self.pos = start;
            return Err(self.err("expected a number"));
        }
        let text = self.text.get(start..self.pos).unwrap_or("");
        if is_float {
            let f: f64 = text.parse().map_err(|_| LiteralError {
                offset: start,
                message: format!("`{text}` is not a number"),
            })?;
            let number = Number::from_f64(f).ok_or_else(|| LiteralError {
                offset: start,
                message: format!("`{text}` is not a finite number"),
            })?;
            return Ok(Value::Number(number));
        }
        if body.len() > 1 && body.starts_with('0') {
            self.pos = start;
            return Err(self.err("an integer with a leading zero is not a Python literal"));
        }
        let too_big = || LiteralError {
            offset: start,
            message: format!(
                "the integer `{text}` does not fit in 64 bits, so it cannot be kept exactly"
            ),
        };
        if negative {
            let i: i64 = text.parse().map_err(|_| too_big())?;
            Ok(Value::from(i))
        } else {
            let u: u64 = body.parse().map_err(|_| too_big())?;
            Ok(Value::from(u))
        }
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        let start = self.pos;
        let quote = self.peek().unwrap_or(b'\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                self.pos = start;
                return Err(self.err("a string that is never closed"));
            };
            match c {
                '\n' | '\r' => return Err(self.err("a line break inside a one-line string")),
                '\\' => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                c if c as u32 == u32::from(quote) => {
                    self.pos += 1;
                    return Ok(out);
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// One escape, after its backslash, as Python reads it in a (non-raw, non-bytes) string.
    fn escape(&mut self, out: &mut String) -> Result<(), LiteralError> {
        let Some(c) = self.rest().chars().next() else {
            return Err(self.err("a backslash at the end of the text"));
        };
        self.pos += c.len_utf8();
        match c {
            '\n' => {} // line continuation
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut code = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            code = code * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push(self.code_point(code)?);
            }
            'x' => {
                let code = self.hex_digits(2)?;
                out.push(self.code_point(code)?);
            }
            'u' => {
                let code = self.hex_digits(4)?;
                out.push(self.code_point(code)?);
            }
            'U' => {
                let code = self.hex_digits(8)?;
                out.push(self.code_point(code)?);
            }
            'N' => {
                return Err(self.err(
                    "a `\\N{...}` named escape is not read; sosw 0.7's repr never wrote one",
                ));
            }
            // Python keeps an unknown escape as written, backslash included.
            other => {
                out.push('\\');
                out.push(other);
            }
        }
        Ok(())
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32, LiteralError> {
        let digits = self.text.get(self.pos..self.pos + n).unwrap_or("");
        if digits.len() != n || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err(format!("expected {n} hexadecimal digits in an escape")));
        }
        self.pos += n;
        u32::from_str_radix(digits, 16).map_err(|_| self.err("a bad hexadecimal escape"))
    }

    fn code_point(&self, code: u32) -> Result<char, LiteralError> {
        char::from_u32(code).ok_or_else(|| {
            self.err(format!(
                "the escape U+{code:04X} is not a character JSON text can hold (a lone surrogate or beyond Unicode)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_sosw_07_wrote_for_a_payload() {
        assert_eq!(
            parse("{'word': 'dead', 'count': 2}").expect("repr"),
            json!({"word": "dead", "count": 2})
        );
        let text = r#"{'b': [1, -2, 3.5, -0.25, 1e+16, 1.5e-07], 'a': {'t': True, 'f': False, 'n': None}, "it's": "say \"hi\"", 'e': ''}"#;
        let value = parse(text).expect("nested repr");
        let expected: Value = serde_json::from_str(
            r#"{"b":[1,-2,3.5,-0.25,1e16,1.5e-7],"a":{"t":true,"f":false,"n":null},"it's":"say \"hi\"","e":""}"#,
        )
        .expect("JSON");
        assert_eq!(
            serde_json::to_string(&value).expect("JSON"),
            serde_json::to_string(&expected).expect("JSON"),
            "values and key order are kept"
        );
    }

    #[test]
    fn reads_escapes_in_both_quote_styles() {
        let value = parse(r"['a\'b', 'tab\there', 'nl\n', '\x00\x7f', '\u00e9\U0001f600', 'back\\slash', 'é😀', '\d', '\101']")
            .expect("escapes");
        assert_eq!(
            value,
            json!([
                "a'b",
                "tab\there",
                "nl\n",
                "\u{0}\u{7f}",
                "é😀",
                "back\\slash",
                "é😀",
                "\\d",
                "A"
            ])
        );
        assert_eq!(parse(r#""a'b""#).expect("double quotes"), json!("a'b"));
    }

    #[test]
    fn reads_tuples_as_arrays_and_parentheses_as_grouping() {
        assert_eq!(parse("(1, 'a')").expect("tuple"), json!([1, "a"]));
        assert_eq!(parse("(1,)").expect("one-tuple"), json!([1]));
        assert_eq!(parse("()").expect("empty"), json!([]));
        assert_eq!(parse("(1)").expect("grouping"), json!(1));
        assert_eq!(parse("[1, 2,]").expect("trailing comma"), json!([1, 2]));
    }

    #[test]
    fn refuses_everything_that_is_not_a_literal() {
        for bad in [
            "",
            "{'a': 1",
            "{'a' 1}",
            "{1: 'a'}",
            "{1, 2}",
            "{'a': 1}}",
            "__import__('os').system('true')",
            "print('x')",
            "{'a': open('f')}",
            "{'a': 1 + 2}",
            "{'a': inf}",
            "{'a': -inf}",
            "{'a': nan}",
            "{'a': 1j}",
            "{'a': 0x10}",
            "{'a': 1_000}",
            "{'a': 007}",
            "{'a': b'x'}",
            "{'a': r'x'}",
            "{'a': 'x\n'}",
            "{'a': 'unclosed}",
            "{'a': '\\ud800'}",
            "{'a': '\\N{BULLET}'}",
            "{'a': '\\x4'}",
            "{'a': 123456789012345678901234567890}",
            "{'a': 1e999}",
            "{'a': -}",
            "{'a': .}",
            "{'a': 'x' 'y'}",
            "{'a': lambda: 1}",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                !err.message.is_empty() && err.offset <= bad.len(),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&deep).expect_err("too deep");
        assert!(err.message.contains("deeper"), "{err}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_literal_like_text(text in r#"[\[\]{}()'",:\\ a-zTFN0-9.eE+\-xuU]{0,120}"#) {
            let _ = parse(&text);
        }

        #[test]
        fn reads_back_the_repr_of_any_json_object(value in json_object()) {
            let text = python_repr(&value);
            let back = parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            proptest::prop_assert_eq!(
                serde_json::to_string(&back).expect("JSON"),
                serde_json::to_string(&value).expect("JSON")
            );
        }
    }

    fn json_object() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        let tree = leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((".{0,8}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        });
        proptest::collection::vec((".{0,8}", tree), 0..6)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    /// Python's `repr` of a JSON-decoded value, as far as this test needs it: Python's string repr rules
    /// (quote choice, escapes of non-printable characters). Checked against the real sosw 0.7.47 rows in
    /// the redrive tests; here it only feeds the round trip.
    fn python_repr(value: &Value) -> String {
        match value {
            Value::Null => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                    // Python's repr of a float always has a `.` or an exponent.
                    let s = format!("{f:?}");
                    if s.contains(['.', 'e', 'E']) {
                        s
                    } else {
                        format!("{s}.0")
                    }
                } else {
                    n.to_string()
                }
            }
            Value::String(s) => {
                let quote = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                let mut out = String::from(quote);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == quote => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            out.push_str(&format!("\\x{:02x}", c as u32));
                        }
                        c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push(quote);
                out
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(python_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::Object(map) => {
                let inner: Vec<String> = map
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}: {}",
                            python_repr(&Value::String(k.clone())),
                            python_repr(v)
                        )
                    })
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
}
