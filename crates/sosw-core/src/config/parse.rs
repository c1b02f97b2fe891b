//! Turning a JSON config document into a typed config, with errors a user can act on.
//!
//! serde reports *what* is wrong; `serde_path_to_error` adds *where*. This module rewrites both into an
//! [`Error::Config`] whose `path` is the full dotted key path and whose message names the expected type
//! and, for an unknown key, the nearest valid key (by edit distance).
//!
//! Checks that run after serde has read a value (an `id` that contradicts its map key, a constant that
//! must keep sosw 0.7's value) report the key they are about with [`key_error`], so that the key lands
//! in the path too.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Reads `value` as a `T`, reporting any problem as an [`Error::Config`] about `document`.
pub fn parse_config<T: DeserializeOwned>(document: &str, value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let (path, message) = explain(&err.path().to_string(), &err.inner().to_string());
        Error::Config {
            document: document.to_string(),
            path,
            message,
        }
    })
}

/// A serde error about `key` below the value being deserialized; [`parse_config`] moves `key` into the
/// error's path. `key` may be dotted (`dynamo_db_config.table_name`).
pub(crate) fn key_error<E: serde::de::Error>(key: &str, message: impl std::fmt::Display) -> E {
    E::custom(format!("{KEY_MARK}`{key}`: {message}"))
}

const KEY_MARK: &str = "key ";

/// Extends `path` (serde_path_to_error's rendering, `.` for the root) with `key`.
fn join(path: &str, key: &str) -> String {
    if path == "." || path.is_empty() {
        key.to_string()
    } else if path == key || path.ends_with(&format!(".{key}")) {
        // serde_path_to_error already names an unknown key when serde's own code rejected it.
        path.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The final path and message for serde's `message` at `path`.
fn explain(path: &str, message: &str) -> (String, String) {
    let marked = message
        .strip_prefix(KEY_MARK)
        .and_then(|m| m.strip_prefix('`'));
    if let Some((key, tail)) = marked.and_then(|m| m.split_once("`: ")) {
        return (join(path, key), tail.to_string());
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown_key(path, rest);
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (value, candidates) = split_candidates(rest);
        let path = if path.is_empty() { "." } else { path };
        return (
            path.to_string(),
            format!("unknown value `{value}`; {}", hint(value, &candidates)),
        );
    }
    if let Some(key) = message.strip_prefix("missing field ").and_then(backticked) {
        return (join(path, key), format!("missing required key `{key}`"));
    }
    let path = if path.is_empty() { "." } else { path };
    (path.to_string(), friendly_types(message))
}

fn unknown_key(path: &str, rest: &str) -> (String, String) {
    let (key, candidates) = split_candidates(rest);
    let full = join(path, key);
    (
        full.clone(),
        format!("unknown key `{full}`; {}", hint(key, &candidates)),
    )
}

/// The first backticked word of `text` and every later one (serde's "expected one of `a`, `b`").
fn split_candidates(text: &str) -> (&str, Vec<&str>) {
    let mut words = text.split('`').skip(1).step_by(2);
    let first = words.next().unwrap_or_default();
    (first, words.collect())
}

fn backticked(text: &str) -> Option<&str> {
    text.split('`').nth(1)
}

fn hint(wrong: &str, candidates: &[&str]) -> String {
    match nearest(wrong, candidates) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => "no keys are accepted here".to_string(),
        None => {
            let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            format!("expected one of {}", list.join(", "))
        }
    }
}

/// The candidate closest to `wrong`, if it is close enough to be a plausible typo.
pub(crate) fn nearest<'a>(wrong: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&wrong_lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= 2 || *d * 3 <= wrong.chars().count().max(c.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// serde names Rust types (`u32`, `struct Labourer`); config authors think in JSON.
fn friendly_types(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" | "a string" => expected.to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "an object".to_string(),
        other => match other.strip_prefix("struct ") {
            Some(name) => format!("an object ({name})"),
            None => other.to_string(),
        },
    };
    format!("{head}, expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            (
                "max_simultanious_invocations",
                "max_simultaneous_invocations",
                1,
            ),
            ("alpah", "alpha", 2),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
            assert_eq!(edit_distance(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn nearest_picks_a_close_candidate_and_ignores_far_ones() {
        let keys = ["max_attempts", "max_simultaneous_invocations", "labourers"];
        assert_eq!(
            nearest("max_simultanious_invocations", &keys),
            Some("max_simultaneous_invocations")
        );
        assert_eq!(nearest("Labourers", &keys), Some("labourers"));
        assert_eq!(nearest("queue_bucket", &keys), None);
    }

    #[test]
    fn unknown_field_becomes_full_path_and_suggestion() {
        let (path, message) = explain(
            "task_config.labourers.w1",
            "unknown field `max_simultanious_invocations`, expected one of `id`, `max_simultaneous_invocations`",
        );
        assert_eq!(
            path,
            "task_config.labourers.w1.max_simultanious_invocations"
        );
        assert_eq!(
            message,
            "unknown key `task_config.labourers.w1.max_simultanious_invocations`; did you mean `max_simultaneous_invocations`?"
        );
    }

    #[test]
    fn unknown_field_already_in_the_path_is_not_repeated() {
        let (path, _) = explain("a.zzz", "unknown field `zzz`, expected `alpha` or `beta`");
        assert_eq!(path, "a.zzz");
    }

    #[test]
    fn unknown_field_without_a_close_key_lists_the_valid_keys() {
        let (_, message) = explain(".", "unknown field `zzz`, expected `alpha` or `beta`");
        assert_eq!(
            message,
            "unknown key `zzz`; expected one of `alpha`, `beta`"
        );
    }

    #[test]
    fn key_errors_move_their_key_into_the_path() {
        let err: serde_json::Error = key_error("max_attempts_w9", "no such labourer");
        let (path, message) = explain("task_config", &err.to_string());
        assert_eq!(path, "task_config.max_attempts_w9");
        assert_eq!(message, "no such labourer");
    }

    #[test]
    fn type_errors_name_the_path_and_a_json_type() {
        let cases = [
            (
                "invalid type: string \"x\", expected u32",
                "invalid type: string \"x\", expected a non-negative integer",
            ),
            (
                "invalid type: integer `5`, expected a map",
                "invalid type: integer `5`, expected an object",
            ),
            (
                "invalid type: null, expected struct Labourer",
                "invalid type: null, expected an object (Labourer)",
            ),
            (
                "invalid type: integer `1`, expected a string",
                "invalid type: integer `1`, expected a string",
            ),
        ];
        for (serde_message, expected) in cases {
            let (path, message) = explain("task_config.max_attempts", serde_message);
            assert_eq!(path, "task_config.max_attempts");
            assert_eq!(message, expected);
        }
    }

    #[test]
    fn missing_fields_name_the_key() {
        let (path, message) = explain("a.details", "missing field `Namespace`");
        assert_eq!(path, "a.details.Namespace");
        assert_eq!(message, "missing required key `Namespace`");
    }

    #[test]
    fn unknown_variants_suggest_a_value() {
        let (path, message) = explain(
            "x.op",
            "unknown variant `<==`, expected one of `<`, `<=`, `>`",
        );
        assert_eq!(path, "x.op");
        assert!(
            message.starts_with("unknown value `<==`; did you mean `<=`?"),
            "{message}"
        );
    }
}
