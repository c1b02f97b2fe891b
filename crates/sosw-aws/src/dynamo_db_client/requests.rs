//! What a caller asks of [`super::DynamoDbClient`]: conditions, queries, scans and updates, each rendered
//! into a DynamoDB expression with every attribute name behind a `#nK` placeholder and every value
//! behind a `:vK` one (sosw 0.7 escaped only the names it was told to, and none in filters or `REMOVE`
//! clauses: B21).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::dynamodb::expr::Placeholders;
use sosw_core::{Error, Result};

/// A comparison operator of a [`Condition::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A filter or condition expression (sosw 0.7's one-condition mini-parser, as a type: any number of
/// conditions, joined with `And` / `Or`). Attribute names are the row's field names; `field_names`
/// renames apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `attribute_exists(attr)`
    Exists(String),
    /// `attribute_not_exists(attr)`
    NotExists(String),
    /// `attr OP value`
    Compare(String, Op, Value),
    /// `attr BETWEEN low AND high`
    Between(String, Value, Value),
    /// `begins_with(attr, prefix)`
    BeginsWith(String, String),
    /// `contains(attr, value)`
    Contains(String, Value),
    /// All of them.
    And(Vec<Condition>),
    /// Any of them.
    Or(Vec<Condition>),
    /// Not this one.
    Not(Box<Condition>),
}

impl Condition {
    /// `attribute_exists(attr)`.
    pub fn exists(attr: impl Into<String>) -> Self {
        Condition::Exists(attr.into())
    }

    /// `attribute_not_exists(attr)`.
    pub fn not_exists(attr: impl Into<String>) -> Self {
        Condition::NotExists(attr.into())
    }

    /// `attr OP value`.
    pub fn compare(attr: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Condition::Compare(attr.into(), op, value.into())
    }

    /// `attr = value`.
    pub fn eq(attr: impl Into<String>, value: impl Into<Value>) -> Self {
        Condition::compare(attr, Op::Eq, value)
    }

    /// `attr BETWEEN low AND high` (inclusive).
    pub fn between(attr: impl Into<String>, low: impl Into<Value>, high: impl Into<Value>) -> Self {
        Condition::Between(attr.into(), low.into(), high.into())
    }

    /// This condition and `other`.
    pub fn and(self, other: Condition) -> Self {
        match self {
            Condition::And(mut all) => {
                all.push(other);
                Condition::And(all)
            }
            first => Condition::And(vec![first, other]),
        }
    }

    pub(super) fn render(
        &self,
        p: &mut Placeholders,
        name: &dyn Fn(&str) -> String,
    ) -> Result<String> {
        Ok(match self {
            Condition::Exists(a) => format!("attribute_exists({})", p.name(&name(a))),
            Condition::NotExists(a) => format!("attribute_not_exists({})", p.name(&name(a))),
            Condition::Compare(a, op, v) => {
                format!("{} {} {}", p.name(&name(a)), op.symbol(), p.value(attr(v)?))
            }
            Condition::Between(a, low, high) => format!(
                "{} BETWEEN {} AND {}",
                p.name(&name(a)),
                p.value(attr(low)?),
                p.value(attr(high)?)
            ),
            Condition::BeginsWith(a, prefix) => format!(
                "begins_with({}, {})",
                p.name(&name(a)),
                p.value(AttributeValue::S(prefix.clone()))
            ),
            Condition::Contains(a, v) => {
                format!("contains({}, {})", p.name(&name(a)), p.value(attr(v)?))
            }
            Condition::And(all) | Condition::Or(all) if all.is_empty() => {
                return Err(Error::invalid(
                    "DynamoDB condition",
                    "an `And` or `Or` condition needs at least one condition",
                ));
            }
            Condition::And(all) => join(all, " AND ", p, name)?,
            Condition::Or(all) => join(all, " OR ", p, name)?,
            Condition::Not(c) => format!("NOT ({})", c.render(p, name)?),
        })
    }
}

fn join(
    all: &[Condition],
    with: &str,
    p: &mut Placeholders,
    name: &dyn Fn(&str) -> String,
) -> Result<String> {
    let parts = all
        .iter()
        .map(|c| c.render(p, name).map(|s| format!("({s})")))
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(with))
}

/// A JSON value as the attribute value it is (a string stays `S`, a number `N`, a bool `BOOL`, an
/// object `M`, a list `L`, null `NULL`): no guessing from the text of a string (B21).
pub(super) fn attr(v: &Value) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(v)
        .map_err(|e| Error::invalid("DynamoDB value", format!("{v} cannot be stored: {e}")))
}

/// The condition on a query's sort key (sosw 0.7's `comparisons`, with `BETWEEN` as one value).
#[derive(Debug, Clone, PartialEq)]
pub enum RangeCondition {
    /// `= value`
    Eq(Value),
    /// `< value`
    Lt(Value),
    /// `<= value`
    Le(Value),
    /// `> value`
    Gt(Value),
    /// `>= value`
    Ge(Value),
    /// `begins_with(prefix)`
    BeginsWith(String),
    /// `BETWEEN low AND high`
    Between(Value, Value),
}

/// A query (sosw 0.7's `get_by_query`): the hash key's value, optionally a condition on the sort key,
/// an index, a filter, descending order and a limit. Every page is followed.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub(super) hash: (String, Value),
    pub(super) range: Option<(String, RangeCondition)>,
    pub(super) index_name: Option<String>,
    pub(super) filter: Option<Condition>,
    pub(super) descending: bool,
    pub(super) limit: Option<usize>,
    pub(super) consistent_read: bool,
}

impl Query {
    /// Items whose hash key `attr` is `value`.
    pub fn new(attr: impl Into<String>, value: impl Into<Value>) -> Self {
        Query {
            hash: (attr.into(), value.into()),
            range: None,
            index_name: None,
            filter: None,
            descending: false,
            limit: None,
            consistent_read: false,
        }
    }

    /// ... whose sort key `attr` meets `condition`.
    pub fn range(mut self, attr: impl Into<String>, condition: RangeCondition) -> Self {
        self.range = Some((attr.into(), condition));
        self
    }

    /// ... read from the index `name`.
    pub fn index(mut self, name: impl Into<String>) -> Self {
        self.index_name = Some(name.into());
        self
    }

    /// ... kept only when they meet `filter` (applied after the key condition, as DynamoDB does).
    pub fn filter(mut self, filter: Condition) -> Self {
        self.filter = Some(filter);
        self
    }

    /// ... highest sort key first.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// ... at most `limit` of them.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// ... read strongly consistently (tables and local secondary indexes only).
    pub fn consistent(mut self) -> Self {
        self.consistent_read = true;
        self
    }

    /// The key condition expression.
    pub(super) fn key_condition(
        &self,
        p: &mut Placeholders,
        name: &dyn Fn(&str) -> String,
    ) -> Result<String> {
        let (hash, value) = &self.hash;
        let mut expr = format!("{} = {}", p.name(&name(hash)), p.value(attr(value)?));
        if let Some((range, condition)) = &self.range {
            let r = p.name(&name(range));
            let clause = match condition {
                RangeCondition::Eq(v) => format!("{r} = {}", p.value(attr(v)?)),
                RangeCondition::Lt(v) => format!("{r} < {}", p.value(attr(v)?)),
                RangeCondition::Le(v) => format!("{r} <= {}", p.value(attr(v)?)),
                RangeCondition::Gt(v) => format!("{r} > {}", p.value(attr(v)?)),
                RangeCondition::Ge(v) => format!("{r} >= {}", p.value(attr(v)?)),
                RangeCondition::BeginsWith(prefix) => format!(
                    "begins_with({r}, {})",
                    p.value(AttributeValue::S(prefix.clone()))
                ),
                RangeCondition::Between(low, high) => format!(
                    "{r} BETWEEN {} AND {}",
                    p.value(attr(low)?),
                    p.value(attr(high)?)
                ),
            };
            expr = format!("{expr} AND {clause}");
        }
        Ok(expr)
    }
}

/// A scan (sosw 0.7's `get_by_scan` and `get_by_scan_generator`): the whole table or an index,
/// optionally filtered. Every page is followed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub(super) index_name: Option<String>,
    pub(super) filter: Option<Condition>,
    pub(super) consistent_read: bool,
}

impl Scan {
    /// The whole table.
    pub fn new() -> Self {
        Scan::default()
    }

    /// Scans the index `name` instead (the config's `index_name` when not set).
    pub fn index(mut self, name: impl Into<String>) -> Self {
        self.index_name = Some(name.into());
        self
    }

    /// Keeps only items meeting `filter`.
    pub fn filter(mut self, filter: Condition) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Reads strongly consistently.
    pub fn consistent(mut self) -> Self {
        self.consistent_read = true;
        self
    }
}

/// An update (sosw 0.7's `update` and `patch` arguments): attributes to set, to increment and to
/// remove, and an optional condition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub(super) set: Vec<(String, Value)>,
    pub(super) increment: Vec<(String, Value)>,
    pub(super) remove: Vec<String>,
    pub(super) condition: Option<Condition>,
}

impl Update {
    /// Nothing yet.
    pub fn new() -> Self {
        Update::default()
    }

    /// Sets `attr` to `value` (`attributes_to_update`).
    pub fn set(mut self, attr: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set.push((attr.into(), value.into()));
        self
    }

    /// Adds `by` to the number `attr`, starting from 0 when it is missing
    /// (`attributes_to_increment`).
    pub fn increment(mut self, attr: impl Into<String>, by: impl Into<Value>) -> Self {
        self.increment.push((attr.into(), by.into()));
        self
    }

    /// Removes `attr` (`attributes_to_remove`).
    pub fn remove(mut self, attr: impl Into<String>) -> Self {
        self.remove.push(attr.into());
        self
    }

    /// Writes only when `condition` holds (`condition_expression`).
    pub fn condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    pub(super) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.increment.is_empty() && self.remove.is_empty()
    }

    /// The update expression.
    pub(super) fn expression(
        &self,
        p: &mut Placeholders,
        name: &dyn Fn(&str) -> String,
    ) -> Result<String> {
        let mut sets = Vec::new();
        for (a, v) in &self.set {
            sets.push(p.assign(&name(a), attr(v)?));
        }
        for (a, by) in &self.increment {
            if !by.is_number() {
                return Err(Error::invalid(
                    "DynamoDB update",
                    format!("increment of `{a}` by {by}: increments are numbers"),
                ));
            }
            let n = p.name(&name(a));
            let zero = p.value(AttributeValue::N("0".into()));
            let v = p.value(attr(by)?);
            sets.push(format!("{n} = if_not_exists({n}, {zero}) + {v}"));
        }
        let mut expr = String::new();
        if !sets.is_empty() {
            expr = format!("SET {}", sets.join(", "));
        }
        if !self.remove.is_empty() {
            let names: Vec<String> = self.remove.iter().map(|a| p.name(&name(a))).collect();
            if !expr.is_empty() {
                expr.push(' ');
            }
            expr.push_str(&format!("REMOVE {}", names.join(", ")));
        }
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn same(name: &str) -> String {
        name.to_owned()
    }

    #[test]
    fn every_name_and_value_is_a_placeholder() {
        let mut p = Placeholders::default();
        let c = Condition::exists("status")
            .and(Condition::compare("name", Op::Ne, "x"))
            .and(Condition::between("size", 1, 5));
        let expr = c.render(&mut p, &same).expect("renders");
        assert_eq!(
            expr,
            "(attribute_exists(#n0)) AND (#n1 <> :v0) AND (#n2 BETWEEN :v1 AND :v2)"
        );
        assert_eq!(p.names.get("#n0").map(String::as_str), Some("status"));
        assert_eq!(p.values.get(":v0"), Some(&AttributeValue::S("x".into())));
        assert_eq!(p.values.get(":v1"), Some(&AttributeValue::N("1".into())));
    }

    #[test]
    fn strings_stay_strings() {
        for (v, want) in [
            (json!("-5"), AttributeValue::S("-5".into())),
            (json!("true"), AttributeValue::S("true".into())),
            (json!(-5), AttributeValue::N("-5".into())),
            (json!(true), AttributeValue::Bool(true)),
        ] {
            assert_eq!(attr(&v).expect("converts"), want, "{v}");
        }
    }

    #[test]
    fn updates_set_increment_and_remove_by_placeholder() {
        let mut p = Placeholders::default();
        let u = Update::new()
            .set("name", "a")
            .increment("count", 2)
            .remove("size");
        assert_eq!(
            u.expression(&mut p, &same).expect("renders"),
            "SET #n0 = :v0, #n1 = if_not_exists(#n1, :v1) + :v2 REMOVE #n2"
        );
        let bad = Update::new().increment("count", "two");
        assert!(bad.expression(&mut p, &same).is_err());
        assert!(Update::new().is_empty());
    }

    #[test]
    fn key_conditions_cover_every_comparison() {
        let mut p = Placeholders::default();
        let q = Query::new("h", "a").range("r", RangeCondition::Between(json!(1), json!(2)));
        assert_eq!(
            q.key_condition(&mut p, &same).expect("renders"),
            "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2"
        );
        let mut p = Placeholders::default();
        let q = Query::new("h", "a").range("r", RangeCondition::BeginsWith("x".into()));
        assert_eq!(
            q.key_condition(&mut p, &same).expect("renders"),
            "#n0 = :v0 AND begins_with(#n1, :v1)"
        );
    }
}
