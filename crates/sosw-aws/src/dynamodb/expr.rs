//! Expression placeholders: every attribute name goes through `ExpressionAttributeNames`, so names that
//! are reserved words or contain dots (a worker's `stat_*` / `result_*` keys can be anything) are safe.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// Collects `#nK` names and `:vK` values for one request.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// The placeholder of attribute `name` (the same one every time for the same name).
    pub fn name(&mut self, name: &str) -> String {
        if let Some((k, _)) = self.names.iter().find(|(_, v)| v.as_str() == name) {
            return k.clone();
        }
        let key = format!("#n{}", self.names.len());
        self.names.insert(key.clone(), name.to_owned());
        key
    }

    /// A new placeholder for `value`.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), value);
        key
    }

    /// `#name = :value`, for a `SET` clause.
    pub fn assign(&mut self, name: &str, value: AttributeValue) -> String {
        format!("{} = {}", self.name(name), self.value(value))
    }

    /// The values, or `None` when there are none (DynamoDB rejects an empty map).
    pub fn values_opt(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// The names, or `None` when there are none.
    pub fn names_opt(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_once_and_values_numbered() {
        let mut p = Placeholders::default();
        let a = p.assign("stat_a.b", AttributeValue::N("1".into()));
        let again = p.name("stat_a.b");
        let other = p.assign("result_size", AttributeValue::S("x".into()));
        assert_eq!(a, "#n0 = :v0");
        assert_eq!(again, "#n0");
        assert_eq!(other, "#n1 = :v1");
        assert_eq!(p.names.get("#n0").map(String::as_str), Some("stat_a.b"));
        assert!(Placeholders::default().names_opt().is_none());
        assert!(Placeholders::default().values_opt().is_none());
    }
}
