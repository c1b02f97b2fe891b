//! `DynamoDbClient` on DynamoDB Local: every method, on a table of its own with a hash and range key, a
//! global secondary index and a renamed field. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing
//! instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use sosw::dynamo_db::{
    Capacity, Condition, DynamoDbClient, DynamoDbConfig, Op, Query, RangeCondition, Scan, Update,
};
use sosw_integration_tests::{dynamodb_client, unique_prefix};

/// A worker's row: `name`, `size` and `status` are DynamoDB reserved words; `kind` is stored as
/// `word_kind` (`field_names`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    word: String,
    n: i64,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pad: Option<String>,
}

fn row(word: &str, n: i64, kind: &str) -> Row {
    Row {
        word: word.into(),
        n,
        kind: kind.into(),
        name: None,
        size: None,
        status: None,
        pad: None,
    }
}

fn key(word: &str, n: i64) -> serde_json::Value {
    json!({"word": word, "n": n})
}

/// A fresh table (`word` S hash, `n` N range, index `by_kind` on `word_kind`, `n`; 5 RCU / 5 WCU) and a
/// client over it, or `None` to skip.
async fn setup() -> Option<(Client, DynamoDbClient)> {
    let raw = dynamodb_client().await?;
    let table = format!("{}words", unique_prefix());
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("key")
    };
    let throughput = || {
        ProvisionedThroughput::builder()
            .read_capacity_units(5)
            .write_capacity_units(5)
            .build()
            .expect("throughput")
    };
    raw.create_table()
        .table_name(&table)
        .attribute_definitions(attr("word", ScalarAttributeType::S))
        .attribute_definitions(attr("n", ScalarAttributeType::N))
        .attribute_definitions(attr("word_kind", ScalarAttributeType::S))
        .key_schema(key("word", KeyType::Hash))
        .key_schema(key("n", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_kind")
                .key_schema(key("word_kind", KeyType::Hash))
                .key_schema(key("n", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .provisioned_throughput(throughput())
                .build()
                .expect("index"),
        )
        .provisioned_throughput(throughput())
        .send()
        .await
        .expect("table created on DynamoDB Local");
    let config: DynamoDbConfig = serde_json::from_value(json!({
        "table_name": table,
        "row_mapper": {"word": "S", "n": "N", "word_kind": "S", "size": "N"},
        "required_fields": ["word", "n", "kind"],
        "field_names": {"kind": "word_kind"},
    }))
    .expect("a sosw 0.7 dynamo_db_config");
    Some((raw.clone(), DynamoDbClient::new(raw, config)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_and_the_row_rules() {
    let Some((raw, db)) = setup().await else {
        return;
    };
    let mut hello = row("hello", 1, "greeting");
    hello.name = Some("-5".into());
    hello.status = Some("true".into());
    assert!(db.put(&hello, true).await.expect("put"));
    let got: Option<Row> = db.get(&key("hello", 1)).await.expect("get");
    assert_eq!(got.as_ref(), Some(&hello), "strings stay strings (B21)");
    let stored = raw
        .get_item()
        .table_name(db.table_name())
        .key("word", AttributeValue::S("hello".into()))
        .key("n", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("raw get")
        .item
        .expect("stored");
    assert_eq!(
        stored.get("word_kind"),
        Some(&AttributeValue::S("greeting".into())),
        "field_names rename on write"
    );
    assert_eq!(stored.get("name"), Some(&AttributeValue::S("-5".into())));
    assert_eq!(
        stored.get("status"),
        Some(&AttributeValue::S("true".into()))
    );
    assert!(!stored.contains_key("kind"));

    let mut other = hello.clone();
    other.name = Some("changed".into());
    assert!(
        !db.put(&other, false).await.expect("put without overwrite"),
        "an existing item is not overwritten"
    );
    let got: Option<Row> = db.get(&key("hello", 1)).await.expect("get");
    assert_eq!(got.as_ref(), Some(&hello));
    assert!(db.put(&other, true).await.expect("put"));
    let got: Option<Row> = db.get(&key("hello", 1)).await.expect("get");
    assert_eq!(got, Some(other));
    let missing: Option<Row> = db.get(&key("hello", 2)).await.expect("get");
    assert_eq!(missing, None);

    let err = db
        .put(&json!({"word": "bad", "n": 1}), true)
        .await
        .expect_err("a required field is missing");
    let msg = err.to_string();
    assert!(
        msg.contains(db.table_name()) && msg.contains("`kind`") && msg.contains("\"bad\""),
        "{msg}"
    );
    let err = db
        .put(
            &json!({"word": "bad", "n": 1, "kind": "k", "size": "big"}),
            true,
        )
        .await
        .expect_err("row_mapper says N");
    assert!(err.to_string().contains("`size` is S"), "{err}");

    raw.put_item()
        .table_name(db.table_name())
        .item("word", AttributeValue::S("python".into()))
        .item("n", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("raw put");
    let err = db
        .get::<_, Row>(&key("python", 1))
        .await
        .expect_err("required_fields are enforced on read (B21)");
    let msg = err.to_string();
    assert!(
        msg.contains(db.table_name()) && msg.contains("python") && msg.contains("`kind`"),
        "{msg}"
    );
    let stats = db.get_stats();
    assert_eq!(stats.get("dynamo_put_queries"), Some(&3), "{stats:?}");
    db.reset_stats();
    assert!(db.get_stats().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_follow_every_page_with_comparisons_index_filter_count_and_order() {
    let Some((_raw, db)) = setup().await else {
        return;
    };
    for n in 0..30 {
        let mut r = row("q", n, if n % 3 == 0 { "three" } else { "other" });
        r.status = (n % 2 == 0).then(|| "even".to_owned());
        r.name = Some(format!("name-{n:02}"));
        assert!(db.put(&r, true).await.expect("put"));
    }
    let ns = |rows: Vec<Row>| rows.into_iter().map(|r| r.n).collect::<Vec<_>>();
    let all: Vec<Row> = db
        .get_by_query(&Query::new("word", "q"))
        .await
        .expect("query");
    assert_eq!(ns(all), (0..30).collect::<Vec<_>>());
    let below: Vec<Row> = db
        .get_by_query(&Query::new("word", "q").range("n", RangeCondition::Lt(json!(3))))
        .await
        .expect("query");
    assert_eq!(ns(below), vec![0, 1, 2]);
    for (condition, want) in [
        (RangeCondition::Le(json!(1)), vec![0, 1]),
        (RangeCondition::Gt(json!(27)), vec![28, 29]),
        (RangeCondition::Ge(json!(28)), vec![28, 29]),
        (RangeCondition::Eq(json!(7)), vec![7]),
        (
            RangeCondition::Between(json!(10), json!(12)),
            vec![10, 11, 12],
        ),
    ] {
        let got: Vec<Row> = db
            .get_by_query(&Query::new("word", "q").range("n", condition.clone()))
            .await
            .expect("query");
        assert_eq!(ns(got), want, "{condition:?}");
    }
    let desc: Vec<Row> = db
        .get_by_query(&Query::new("word", "q").descending().limit(3))
        .await
        .expect("query");
    assert_eq!(ns(desc), vec![29, 28, 27], "descending, limited");
    let odd: Vec<Row> = db
        .get_by_query(
            &Query::new("word", "q")
                .range("n", RangeCondition::Lt(json!(6)))
                .filter(Condition::not_exists("status")),
        )
        .await
        .expect("query");
    assert_eq!(ns(odd), vec![1, 3, 5], "a filter on a reserved word");
    let named: Vec<Row> = db
        .get_by_query(
            &Query::new("word", "q").filter(Condition::BeginsWith("name".into(), "name-2".into())),
        )
        .await
        .expect("query");
    assert_eq!(ns(named), (20..30).collect::<Vec<_>>());
    let threes: Vec<Row> = db
        .get_by_query(
            &Query::new("kind", "three")
                .index("by_kind")
                .range("n", RangeCondition::Ge(json!(20))),
        )
        .await
        .expect("index query");
    assert_eq!(
        ns(threes),
        vec![21, 24, 27],
        "an index, by the renamed field"
    );
    assert_eq!(
        db.count_by_query(&Query::new("word", "q").filter(Condition::exists("status")))
            .await
            .expect("count"),
        15
    );

    // Rows of ~100 KB: a query of 15 of them needs more than one 1 MB page.
    let pad = "x".repeat(100_000);
    for n in 0..15 {
        let mut r = row("big", n, "big");
        r.pad = Some(pad.clone());
        db.put(&r, true).await.expect("put");
    }
    db.reset_stats();
    let big: Vec<Row> = db
        .get_by_query(&Query::new("word", "big"))
        .await
        .expect("query");
    assert_eq!(big.len(), 15, "every page followed");
    let pages = db
        .get_stats()
        .get("dynamo_get_queries")
        .copied()
        .unwrap_or(0);
    assert!(pages >= 2, "{pages} pages");
    assert_eq!(
        db.count_by_query(&Query::new("word", "big"))
            .await
            .expect("count"),
        15
    );
    let limited: Vec<Row> = db
        .get_by_query(&Query::new("word", "big").limit(12))
        .await
        .expect("query");
    assert_eq!(
        ns(limited),
        (0..12).collect::<Vec<_>>(),
        "a limit across pages"
    );

    let scanned: Vec<Row> = db.get_by_scan(&Scan::new()).await.expect("scan");
    assert_eq!(scanned.len(), 45);
    let pages: Vec<Vec<Row>> = db
        .get_by_scan_pages(&Scan::new().filter(Condition::eq("word", "big")))
        .try_collect()
        .await
        .expect("scan pages");
    assert!(pages.len() >= 2, "{} pages", pages.len());
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 15);
    let indexed: Vec<Row> = db
        .get_by_scan(
            &Scan::new()
                .index("by_kind")
                .filter(Condition::eq("kind", "three")),
        )
        .await
        .expect("index scan");
    assert_eq!(indexed.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_gets_updates_deletes_transactions_and_the_table() {
    let Some((_raw, db)) = setup().await else {
        return;
    };
    for n in 0..120 {
        db.put(&row("b", n, "batch"), true).await.expect("put");
    }
    let keys: Vec<_> = (0..130).chain(0..5).map(|n| key("b", n)).collect();
    db.reset_stats();
    let got: Vec<Row> = db
        .batch_get_items_one_table(&keys)
        .await
        .expect("batch get");
    let found: HashSet<i64> = got.iter().map(|r| r.n).collect();
    assert_eq!(
        found,
        (0..120).collect::<HashSet<_>>(),
        "missing keys left out, repeats once"
    );
    assert_eq!(got.len(), 120);
    assert_eq!(
        db.get_stats().get("dynamo_batch_get_queries"),
        Some(&2),
        "100 keys a call"
    );

    db.put(&row("u", 1, "upd"), true).await.expect("put");
    let update = Update::new()
        .set("name", "renamed")
        .increment("size", 2)
        .set("status", "set");
    assert!(db.update(&key("u", 1), &update).await.expect("update"));
    assert!(
        db.update(&key("u", 1), &Update::new().increment("size", 3))
            .await
            .expect("update")
    );
    let got: Option<Row> = db.get(&key("u", 1)).await.expect("get");
    let got = got.expect("row");
    assert_eq!(
        (got.name.as_deref(), got.size, got.status.as_deref()),
        (Some("renamed"), Some(5), Some("set"))
    );
    assert!(
        db.update(&key("u", 1), &Update::new().remove("status").remove("name"))
            .await
            .expect("remove reserved words")
    );
    let got: Row = db.get(&key("u", 1)).await.expect("get").expect("row");
    assert_eq!((got.name, got.status), (None, None));
    let refused = db
        .update(
            &key("u", 1),
            &Update::new()
                .set("name", "never")
                .condition(Condition::compare("size", Op::Gt, 100).and(Condition::exists("kind"))),
        )
        .await
        .expect("update");
    assert!(!refused, "a failed condition writes nothing");
    let err = db
        .update(&key("u", 1), &Update::new())
        .await
        .expect_err("nothing to update");
    assert!(err.to_string().contains("\"u\""), "{err}");

    assert!(
        !db.patch(&key("u", 2), &Update::new().set("kind", "patched"))
            .await
            .expect("patch"),
        "patch leaves a missing item missing"
    );
    let none: Option<Row> = db.get(&key("u", 2)).await.expect("get");
    assert_eq!(none, None);
    assert!(
        db.patch(&key("u", 1), &Update::new().set("kind", "patched"))
            .await
            .expect("patch")
    );
    assert!(
        db.update(&key("u", 3), &Update::new().set("kind", "created"))
            .await
            .expect("update"),
        "update creates a missing item, as sosw 0.7's did"
    );
    let created: Row = db.get(&key("u", 3)).await.expect("get").expect("created");
    assert_eq!(created.kind, "created");

    db.delete(&key("u", 3)).await.expect("delete");
    db.delete(&key("u", 3))
        .await
        .expect("deleting a missing item is fine");
    let gone: Option<Row> = db.get(&key("u", 3)).await.expect("get");
    assert_eq!(gone, None);

    let items = vec![
        db.make_put_transaction_item(&row("t", 1, "tx"))
            .expect("item"),
        db.make_put_transaction_item(&row("t", 2, "tx"))
            .expect("item"),
        db.make_delete_transaction_item(&key("u", 1)).expect("item"),
    ];
    db.transact_write(items).await.expect("transaction");
    let t: Vec<Row> = db
        .get_by_query(&Query::new("word", "t"))
        .await
        .expect("query");
    assert_eq!(t.len(), 2);
    let deleted: Option<Row> = db.get(&key("u", 1)).await.expect("get");
    assert_eq!(deleted, None);
    let many: Vec<_> = (0..101)
        .map(|n| {
            db.make_put_transaction_item(&row("many", n, "tx"))
                .expect("item")
        })
        .collect();
    let err = db.transact_write(many).await.expect_err("over 100 refused");
    assert!(err.to_string().contains("at most 100"), "{err}");
    let none: Vec<Row> = db
        .get_by_query(&Query::new("word", "many"))
        .await
        .expect("query");
    assert!(
        none.is_empty(),
        "nothing of a refused transaction is written"
    );

    assert_eq!(
        db.get_table_keys().await.expect("keys"),
        ("word".to_owned(), Some("n".to_owned()))
    );
    let indexes = db.get_table_indexes().await.expect("indexes");
    let by_kind = indexes.get("by_kind").expect("the index");
    assert_eq!(
        (
            by_kind.hash_key.as_str(),
            by_kind.range_key.as_deref(),
            by_kind.projection.as_str()
        ),
        ("word_kind", Some("n"), "ALL")
    );
    assert_eq!(by_kind.capacity, Some(Capacity { read: 5, write: 5 }));
    assert_eq!(
        db.get_capacity().await.expect("capacity"),
        Some(Capacity { read: 5, write: 5 })
    );
    let stats: BTreeMap<String, u64> = db.get_stats();
    for stat in [
        "dynamo_get_queries",
        "dynamo_put_queries",
        "dynamo_update_queries",
        "dynamo_delete_queries",
        "dynamo_transact_write_operations",
    ] {
        assert!(stats.get(stat).is_some_and(|n| *n > 0), "{stat}: {stats:?}");
    }
}
