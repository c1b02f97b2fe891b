//! Paginated queries. Every read follows `LastEvaluatedKey` to the end (or until enough items are
//! found): no silent first-page-only results (sosw issue #43).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use super::codec::Item;
use super::errors::sdk_error;
use sosw_core::error::Result;

/// One query: everything but the paging.
#[derive(Debug, Clone)]
pub(crate) struct QuerySpec<'a> {
    /// Which store operation this serves (for error messages).
    pub operation: &'static str,
    pub table: &'a str,
    pub index: Option<&'a str>,
    pub key_condition: &'static str,
    pub filter: Option<&'static str>,
    pub values: Vec<(&'static str, AttributeValue)>,
    /// Ascending by range key when true.
    pub forward: bool,
    /// Strongly consistent reads (tables and LSIs only).
    pub consistent: bool,
    /// Only these attributes of each item (a `ProjectionExpression`; the read units are the
    /// same, what comes back is smaller).
    pub projection: Option<&'static str>,
}

impl<'a> QuerySpec<'a> {
    /// A query of `table` (or `index` of it) with `key_condition` and its `values`, ascending.
    pub fn new(
        operation: &'static str,
        table: &'a str,
        index: Option<&'a str>,
        key_condition: &'static str,
        values: Vec<(&'static str, AttributeValue)>,
    ) -> Self {
        QuerySpec {
            operation,
            table,
            index,
            key_condition,
            filter: None,
            values,
            forward: true,
            consistent: false,
            projection: None,
        }
    }

    /// Adds a filter expression (applied after `Limit`, hence the paging in [`collect`]).
    pub fn filter(mut self, filter: &'static str) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Highest range key first.
    pub fn descending(mut self) -> Self {
        self.forward = false;
        self
    }

    /// Strongly consistent reads.
    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// Only `attributes` of each item (a projection expression of plain names).
    pub fn project(mut self, attributes: &'static str) -> Self {
        self.projection = Some(attributes);
        self
    }

    fn request(&self, client: &Client) -> QueryFluentBuilder {
        let values: HashMap<String, AttributeValue> = self
            .values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        client
            .query()
            .table_name(self.table)
            .set_index_name(self.index.map(str::to_owned))
            .key_condition_expression(self.key_condition)
            .set_filter_expression(self.filter.map(str::to_owned))
            .set_projection_expression(self.projection.map(str::to_owned))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(self.forward)
            .consistent_read(self.consistent)
    }
}

/// `Limit` for a page when `remaining` items are still wanted.
fn page_limit(remaining: usize) -> i32 {
    i32::try_from(remaining).unwrap_or(i32::MAX).max(1)
}

/// One page of results from `start` (the previous page's last key), and the key to go on from, if
/// there are more.
pub(crate) async fn page(
    client: &Client,
    spec: &QuerySpec<'_>,
    start: Option<Item>,
) -> Result<(Vec<Item>, Option<Item>)> {
    let out = spec
        .request(client)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| sdk_error(spec.operation, spec.table, e))?;
    let next = out.last_evaluated_key.filter(|key| !key.is_empty());
    Ok((out.items.unwrap_or_default(), next))
}

/// Every page of `spec`'s results, one after another, handed to `each` as it comes: memory holds a
/// page, not the results.
pub(crate) async fn each_page(
    client: &Client,
    spec: &QuerySpec<'_>,
    mut each: impl FnMut(Vec<Item>) -> Result<()>,
) -> Result<()> {
    let mut start = None;
    loop {
        let (items, next) = page(client, spec, start).await?;
        each(items)?;
        match next {
            Some(next) => start = Some(next),
            None => return Ok(()),
        }
    }
}

/// Up to `limit` items, following pages until enough are found or the results end.
pub(crate) async fn collect(
    client: &Client,
    spec: &QuerySpec<'_>,
    limit: usize,
) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    while items.len() < limit {
        let out = spec
            .request(client)
            .limit(page_limit(limit - items.len()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(spec.operation, spec.table, e))?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    items.truncate(limit);
    Ok(items)
}

/// The number of matching items (after the filter), summed over every page.
pub(crate) async fn count(client: &Client, spec: &QuerySpec<'_>) -> Result<u64> {
    count_up_to(client, spec, u64::MAX).await
}

/// [`count`], stopping at the first page that brings the total to `cap` or more (and answering
/// `cap` then): the pages not read are not paid for.
pub(crate) async fn count_up_to(client: &Client, spec: &QuerySpec<'_>, cap: u64) -> Result<u64> {
    let mut total: u64 = 0;
    let mut start: Option<Item> = None;
    loop {
        if total >= cap {
            return Ok(cap);
        }
        let out = spec
            .request(client)
            .select(Select::Count)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(spec.operation, spec.table, e))?;
        total += u64::try_from(out.count).unwrap_or(0);
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(total.min(cap)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_stay_within_dynamodb_bounds() {
        assert_eq!(page_limit(0), 1);
        assert_eq!(page_limit(25), 25);
        assert_eq!(page_limit(usize::MAX), i32::MAX);
    }
}
