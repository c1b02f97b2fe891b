//! Packed queued items: the tasks of one enqueue that land in the same queue partition with
//! neighbouring greenfields, several in one item of at most about 1 KB.
//!
//! DynamoDB bills a write by the KB of the item, however small it is: a queued item of the
//! benchmark's task is about 135 bytes and still costs a whole write unit to put and another to
//! delete. A pack holds up to [`PACK_BYTES`] of them (about six), so its enqueue is one write for
//! all of them; each claim takes its task out with one conditional `UpdateItem` (`REMOVE`) of the
//! pack, still one write since the pack stays under 1 KB, and the claim of its last task deletes it
//! (a pack is never left empty). A task then costs `4 + 1/k` write units for a pack of `k` instead
//! of 5 (docs/layout-lean.md, "Packed queued items").
//!
//! | item | `pk` | `sk` | holds |
//! |---|---|---|---|
//! | pack | the queue partition of its tasks | `<order(first greenfield)>#<first task id>\u{1}` | `pt`: task id → the task's queued item without its key, with `greenfield` and its own `lrev` |
//!
//! A pack's sort key is its first (lowest) greenfield's, so a read of a partition's head finds it
//! where its first task would be; the `\u{1}` (a control character, which no task id has) keeps it
//! apart from any task's own item. Every entry keeps its own move counter, and a move out of a pack
//! is the same two steps as out of an item of its own: the destination written first, then the
//! entry removed on the condition that its counter is still the one read
//! (`LeanTaskStore::delete_if` on a key that names the entry). Only greenfields below
//! [`AHEAD_FLOOR`] (the scheduler's, not a clock's) are packed, and a pack spans at most
//! [`PACK_SPAN`], so that a lookup of a task by its greenfield finds its pack within that span of
//! its partition (first among the [`PACK_NEAR`] items just before the task's own place).

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::super::codec::{Item, decode_error, item_size, n, s};
use super::super::errors::refused_item;
use super::fair::AHEAD_FLOOR;
use super::{Found, LeanTaskStore, REV, Written, decode, key, order};
use sosw_core::error::Result;
use sosw_core::task::Task;

/// The attribute of a pack holding its tasks, by id.
pub(crate) const PACKED: &str = "pt";
/// The attribute, in a key this store hands around (never sent to DynamoDB), naming the task of a
/// pack the key stands for.
pub(crate) const ENTRY: &str = "~entry";
/// The attribute of a pack holding the start its tasks' ids share, kept once: its entries are
/// named by the rest of their ids, and their fields by the short names of [`SHORT`]. A pack
/// without it (written by the build of 2026-12-06 before this form) names its entries by the whole
/// id and their fields as a queued item does; both forms read alike.
pub(crate) const PREFIX: &str = "pj";
/// The attribute, in a key this store hands around (never sent to DynamoDB), holding the shared
/// start of the ids of the entry's pack ([`PREFIX`]), when the pack has one.
pub(crate) const ENTRY_PREFIX: &str = "~prefix";
/// The fields of a queued item an entry of a pack with a [`PREFIX`] holds under a short name: (the
/// item's name, the entry's). Every queued task has most of them, and each name is paid for on
/// every read of the queue.
pub(crate) const SHORT: [(&str, &str); 4] = [
    ("payload", "p"),
    ("created_at", "c"),
    ("greenfield", "g"),
    (REV, "r"),
];
/// At most this many bytes (as DynamoDB counts them) in a pack: under 1 KB, so that every
/// removal from it is one write unit.
pub(crate) const PACK_BYTES: usize = 1_000;
/// At most this far from the pack's first greenfield are its other tasks'.
pub(crate) const PACK_SPAN: i64 = 1_000_000;
/// How many items before a task's own place a lookup reads first for the pack holding it: in a
/// partition one enqueue filled, its pack is the item just before; packs of two enqueues that
/// overlap in greenfields can put a few between.
pub(crate) const PACK_NEAR: usize = 8;
/// What ends a pack's sort key.
const PACK_MARK: char = '\u{1}';

/// A pack's sort key, for a pack whose first task is `first`.
fn pack_sk(first: &Task) -> String {
    format!("{}#{}{PACK_MARK}", order(first.greenfield), first.task_id)
}

/// The task the key `key` names inside a pack, if it is a pack entry's key.
pub(crate) fn entry_of(key: &Item) -> Option<&str> {
    key.get(ENTRY)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// `key` as DynamoDB knows it: without the entry it names.
pub(crate) fn table_key(key: &Item) -> Item {
    let mut key = key.clone();
    key.remove(ENTRY);
    key.remove(ENTRY_PREFIX);
    key
}

/// The key of the entry `task_id` of the pack at `pack_key`, whose ids share `prefix` (kept once
/// in the pack, [`PREFIX`]) if it has one.
pub(crate) fn entry_key(pack_key: &Item, task_id: &str, prefix: Option<&str>) -> Item {
    let mut key = table_key(pack_key);
    key.insert(ENTRY.to_owned(), s(task_id));
    if let Some(prefix) = prefix {
        key.insert(ENTRY_PREFIX.to_owned(), s(prefix));
    }
    key
}

/// Where the entry the key `key` names sits in its pack: its name in the pack's map, and whether
/// the pack has the short form ([`PREFIX`], [`SHORT`]). `None` if `key` names no entry, or names
/// one by an id that does not start with its pack's shared start.
fn entry_place(key: &Item) -> Option<(String, bool)> {
    let id = entry_of(key)?;
    match key.get(ENTRY_PREFIX).and_then(|v| v.as_s().ok()) {
        Some(prefix) => Some((id.strip_prefix(prefix.as_str())?.to_owned(), true)),
        None => Some((id.to_owned(), false)),
    }
}

/// The name of the field `name` of a queued item inside a pack entry of the short form (`short`)
/// or the long one.
fn field_name(name: &str, short: bool) -> &str {
    if short && let Some((_, brief)) = SHORT.iter().find(|(long, _)| *long == name) {
        return brief;
    }
    name
}

/// The shared start of the ids of the pack `item` ([`PREFIX`]), if it has one; an error naming
/// `table` if it is not a string.
fn pack_prefix<'a>(item: &'a Item, table: &str) -> Result<Option<&'a str>> {
    match item.get(PREFIX) {
        None => Ok(None),
        Some(AttributeValue::S(prefix)) => Ok(Some(prefix)),
        Some(other) => Err(decode_error(
            table,
            None,
            format!("pack: `{PREFIX}` is not a string: {other:?}"),
        )),
    }
}

/// Each task of the pack `item` by id, with the key of its entry; `None` if `item` is not a pack.
/// A `pt` that is not a map or a `pj` that is not a string is a decode error naming `table`.
pub(crate) fn entry_ids(
    item: &Item,
    pack_key: &Item,
    table: &str,
) -> Result<Option<Vec<(String, Item)>>> {
    let Some(packed) = item.get(PACKED) else {
        return Ok(None);
    };
    let AttributeValue::M(entries) = packed else {
        return Err(decode_error(
            table,
            None,
            format!("pack: `{PACKED}` is not a map: {packed:?}"),
        ));
    };
    let prefix = pack_prefix(item, table)?;
    Ok(Some(
        entries
            .keys()
            .map(|name| {
                let id = format!("{}{name}", prefix.unwrap_or(""));
                let key = entry_key(pack_key, &id, prefix);
                (id, key)
            })
            .collect(),
    ))
}

/// The greenfield of a pack's entry `entry` (either form).
pub(crate) fn entry_greenfield(entry: &AttributeValue) -> Option<i64> {
    let AttributeValue::M(fields) = entry else {
        return None;
    };
    fields
        .get("greenfield")
        .or_else(|| fields.get(field_name("greenfield", true)))?
        .as_n()
        .ok()?
        .parse()
        .ok()
}

/// Each task of the pack `item` as the queued item it would be on its own (its own sort key), with
/// the key of its entry; `None` if `item` is not a pack. A pack this layout did not write (an entry
/// that is not a map or has no integer greenfield, a `pt` that is not a map, no string key) is a
/// decode error naming `table` and the entry: skipping it would leave its task invisible to every
/// read, neither queued nor anywhere else.
pub(crate) fn unpack(item: &Item, table: &str) -> Result<Option<Vec<(Item, Item)>>> {
    let Some(packed) = item.get(PACKED) else {
        return Ok(None);
    };
    let bad = |id: Option<&str>, what: String| decode_error(table, id, format!("pack: {what}"));
    let AttributeValue::M(entries) = packed else {
        return Err(bad(None, format!("`{PACKED}` is not a map: {packed:?}")));
    };
    let (Some(pk @ AttributeValue::S(_)), Some(sk @ AttributeValue::S(_))) =
        (item.get("pk"), item.get("sk"))
    else {
        return Err(bad(None, "its `pk` or `sk` is not a string".to_owned()));
    };
    let pack_key = Item::from([("pk".to_owned(), pk.clone()), ("sk".to_owned(), sk.clone())]);
    let prefix = pack_prefix(item, table)?;
    let mut out = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let id = format!("{}{name}", prefix.unwrap_or(""));
        let AttributeValue::M(fields) = entry else {
            return Err(bad(Some(&id), format!("its entry is not a map: {entry:?}")));
        };
        let Some(greenfield) = entry_greenfield(entry) else {
            return Err(bad(
                Some(&id),
                "its entry has no integer greenfield".to_owned(),
            ));
        };
        let mut plain = fields.clone();
        if prefix.is_some() {
            for (long, short) in SHORT {
                if let Some(value) = plain.remove(short) {
                    plain.insert(long.to_owned(), value);
                }
            }
        }
        plain.remove("greenfield");
        plain.insert("pk".to_owned(), pk.clone());
        plain.insert("sk".to_owned(), s(format!("{}#{id}", order(greenfield))));
        out.push((plain, entry_key(&pack_key, &id, prefix)));
    }
    // In the order of their own sort keys, as separate items would be read.
    out.sort_by(|a, b| {
        let sk = |i: &Item| i.get("sk").and_then(|v| v.as_s().ok()).cloned();
        sk(&a.0).cmp(&sk(&b.0))
    });
    Ok(Some(out))
}

/// Every task of the item `item`: one for an item of its own, each of a pack's (keyed by its
/// entry).
pub(crate) fn decode_all(item: Item, table: &str) -> Result<Vec<super::Found>> {
    match unpack(&item, table)? {
        None => Ok(vec![decode(item, table)?]),
        Some(entries) => {
            let len = entries.len();
            entries
                .into_iter()
                .map(|(plain, entry)| {
                    let mut found = decode(plain, table)?;
                    found.key = entry;
                    found.pack_len = Some(len);
                    Ok(found)
                })
                .collect()
        }
    }
}

/// The length in bytes of the longest start `a` and `b` share, on a character boundary, kept
/// shorter than either (so that no entry of a pack is named by nothing).
fn shared_start(a: &str, b: &str) -> usize {
    let mut len = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        len = i + x.len_utf8();
    }
    if len == a.len() || len == b.len() {
        // One id starts the other: the last shared character stays in the entry's name.
        len = a[..len].char_indices().next_back().map_or(0, |(i, _)| i);
    }
    len
}

/// The queued items `items` (each with its key, in the order written) grouped into the items to
/// put: in each partition, the items in the order given, each added to the partition's open pack
/// while its greenfield is below [`AHEAD_FLOOR`], not below the pack's first, within [`PACK_SPAN`]
/// of it, its id shares a start with the first's, and the pack stays within [`PACK_BYTES`]; else
/// the pack is closed and a new one opened. A pack of one is put as the item it is. A pack keeps
/// the start its ids share once ([`PREFIX`]) and its entries' fields under short names
/// ([`SHORT`]).
pub(crate) fn pack_items(items: Vec<(Task, Item)>) -> Vec<Item> {
    struct Open {
        first: Task,
        pk: AttributeValue,
        /// Each entry's id and fields (short names).
        entries: Vec<(String, Item)>,
        plain: Item,
        /// The pack's own attributes (`pk`, `sk`, the names `pt` and `pj`, the map's 3 bytes).
        base: usize,
        /// The entries' sizes with their whole ids as names.
        entries_size: usize,
        /// The length of the start every id shares (`None` with one entry).
        prefix: Option<usize>,
    }
    impl Open {
        /// The pack's size with `entries` entries of `entries_size` bytes sharing `prefix` bytes.
        fn size(&self, entries: usize, entries_size: usize, prefix: usize) -> usize {
            self.base + entries_size - entries * prefix + prefix
        }
    }
    fn close(open: Open, out: &mut Vec<Item>) {
        let Some(prefix) = open.prefix else {
            out.push(open.plain);
            return;
        };
        let shared = open.first.task_id.as_str()[..prefix].to_owned();
        let pack = Item::from([
            ("pk".to_owned(), open.pk),
            ("sk".to_owned(), s(pack_sk(&open.first))),
            (
                PACKED.to_owned(),
                AttributeValue::M(
                    open.entries
                        .into_iter()
                        .map(|(id, e)| (id[prefix..].to_owned(), AttributeValue::M(e)))
                        .collect(),
                ),
            ),
            (PREFIX.to_owned(), s(shared)),
        ]);
        out.push(pack);
    }
    let mut out = Vec::new();
    // The open pack of each partition, in the order the partitions came.
    let mut open: Vec<Open> = Vec::new();
    let mut by_pk: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (task, item) in items {
        let packable = task.greenfield < AHEAD_FLOOR
            && task.greenfield > i64::MIN / 2
            // A field already under a short name (none of a task's is) keeps its item.
            && !SHORT.iter().any(|(_, short)| item.contains_key(*short));
        let pk = match item.get("pk") {
            Some(AttributeValue::S(pk)) if packable => pk.clone(),
            _ => {
                out.push(item);
                continue;
            }
        };
        let mut entry = Item::new();
        for (name, value) in &item {
            if name != "pk" && name != "sk" {
                entry.insert(field_name(name, true).to_owned(), value.clone());
            }
        }
        entry.insert(
            field_name("greenfield", true).to_owned(),
            n(task.greenfield),
        );
        let id = task.task_id.as_str().to_owned();
        // A map's entry: its name, one byte, and the value (a map: 3 bytes, and per field one
        // byte, its name and its value).
        let entry_size = id.len() + 1 + 3 + item_size(&entry) + entry.len();
        if let Some(&i) = by_pk.get(&pk) {
            let current = &mut open[i];
            let prefix = shared_start(current.first.task_id.as_str(), &id)
                .min(current.prefix.unwrap_or(usize::MAX));
            let entries_size = current.entries_size + entry_size;
            if task.greenfield >= current.first.greenfield
                && task.greenfield - current.first.greenfield <= PACK_SPAN
                && prefix > 0
                && current.size(current.entries.len() + 1, entries_size, prefix) <= PACK_BYTES
                && !current.entries.iter().any(|(e, _)| *e == id)
            {
                current.entries_size = entries_size;
                current.prefix = Some(prefix);
                current.entries.push((id, entry));
                continue;
            }
        }
        let base = item_size(&Item::from([
            ("pk".to_owned(), s(&pk)),
            ("sk".to_owned(), s(pack_sk(&task))),
        ])) + PACKED.len()
            + 3
            + PREFIX.len();
        let new = Open {
            first: task,
            pk: s(&pk),
            entries: vec![(id, entry)],
            plain: item,
            base,
            entries_size: entry_size,
            prefix: None,
        };
        match by_pk.get(&pk) {
            Some(&i) => close(std::mem::replace(&mut open[i], new), &mut out),
            None => {
                by_pk.insert(pk, open.len());
                open.push(new);
            }
        }
    }
    for pack in open {
        close(pack, &mut out);
    }
    out
}

impl LeanTaskStore {
    /// Takes the entry the key `key` names out of its pack if its move counter is `rev` and it
    /// satisfies `extra` (the condition of [`LeanTaskStore::delete_if`], its names read inside the
    /// entry, under the pack's form's names): a conditional `REMOVE` while the pack holds others,
    /// else a conditional delete of the pack. One write either way, and a refused one first only when this process's count of the
    /// pack's tasks (`pack_left`, whose lock this process's removals from the pack take in turn) is
    /// out of date: another process took some of them.
    pub(crate) async fn remove_entry(
        &self,
        operation: &'static str,
        key: Item,
        rev: i64,
        extra: Option<(String, Vec<(&'static str, AttributeValue)>)>,
    ) -> Result<Written> {
        let Some((name, short)) = entry_place(&key) else {
            return Err(sosw_core::Error::invalid(
                "pack entry key",
                format!(
                    "{operation}: the key {key:?} names no entry of a pack of the {} table",
                    self.table()
                ),
            ));
        };
        let rev_name = field_name(REV, short);
        let inside = |name: &str| format!("#pt.#id.{name}");
        let mut condition = format!("{} = :rev", inside("#rev"));
        let mut values = std::collections::HashMap::from([(":rev".to_owned(), n(rev))]);
        let mut names = std::collections::HashMap::from([
            ("#pt".to_owned(), PACKED.to_owned()),
            ("#id".to_owned(), name.clone()),
            ("#rev".to_owned(), rev_name.to_owned()),
        ]);
        if let Some((extra, extra_values)) = extra {
            let mut extra = extra;
            for (k, v) in super::CONDITION_NAMES {
                if extra.contains(k) {
                    extra = extra.replace(k, &inside(k));
                    names.insert(k.to_owned(), field_name(v, short).to_owned());
                }
            }
            condition = format!("{condition} AND {extra}");
            for (k, v) in extra_values {
                values.insert(k.to_owned(), v);
            }
        }
        values.insert(":one".to_owned(), n(1));
        let table_key = table_key(&key);
        // Never a pack left empty: the last task goes with its pack. (An empty map is an item for
        // nothing, and DynamoDB Local's stream writes it in a form the SDK refuses.) Which of the
        // two writes comes first is what this process knows of the pack. A refused write hands back
        // the pack as it is (`ReturnValuesOnConditionCheckFailure`): if the entry is still there
        // as read and only the pack's size was not the one assumed (another process took a task
        // from it meanwhile), the other write follows. Sizes only fall, so this ends.
        // This process's removals from the pack go one at a time (see `pack_left`).
        let count = self.pack_count(&key);
        let mut count = match &count {
            Some(count) => Some(count.lock().await),
            None => None,
        };
        let mut last = count.as_deref() == Some(&1);
        loop {
            let refused_by: Option<Option<Item>> = if last {
                let result = self
                    .client()
                    .delete_item()
                    .table_name(self.table())
                    .set_key(Some(table_key.clone()))
                    .condition_expression(format!("{condition} AND size(#pt) = :one"))
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                refused_item(
                    operation,
                    self.table(),
                    result,
                    DeleteItemError::is_conditional_check_failed_exception,
                    |e| match e {
                        DeleteItemError::ConditionalCheckFailedException(c) => c.item,
                        _ => None,
                    },
                )?
            } else {
                let result = self
                    .client()
                    .update_item()
                    .table_name(self.table())
                    .set_key(Some(table_key.clone()))
                    .update_expression("REMOVE #pt.#id")
                    .condition_expression(format!("{condition} AND size(#pt) > :one"))
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                refused_item(
                    operation,
                    self.table(),
                    result,
                    UpdateItemError::is_conditional_check_failed_exception,
                    |e| match e {
                        UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                        _ => None,
                    },
                )?
            };
            let Some(pack) = refused_by else {
                match count.as_deref_mut() {
                    Some(left) if !last => *left = left.saturating_sub(1).max(1),
                    _ => {}
                }
                if last {
                    drop(count);
                    self.forget_pack(&key);
                }
                return Ok(Written::Yes);
            };
            // Refused: by the size alone only if the entry is there with the counter read and the
            // pack's size is the one the other write needs.
            let Some(AttributeValue::M(entries)) = pack.as_ref().and_then(|p| p.get(PACKED)) else {
                return Ok(Written::ConditionFailed);
            };
            let entry_rev = entries
                .get(&name)
                .and_then(|e| e.as_m().ok())
                .and_then(|e| e.get(rev_name))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok());
            let size_says_last = entries.len() == 1;
            if entry_rev != Some(rev) || size_says_last == last {
                return Ok(Written::ConditionFailed);
            }
            last = size_says_last;
        }
    }

    /// The pack entry `found` moved to an item of its own at its own queued key (move counter one
    /// higher), for a change a pack entry cannot take in place (a failure report on a queued task).
    /// `false` if the entry moved first.
    pub(crate) async fn unpack_entry(
        &self,
        operation: &'static str,
        found: &Found,
    ) -> Result<bool> {
        let Some(AttributeValue::S(pk)) = found.key.get("pk") else {
            return Ok(false);
        };
        let own = key(
            pk.clone(),
            format!("{}#{}", order(found.task.greenfield), found.task.task_id),
        );
        let item = self.item(&found.task, &own, found.rev + 1)?;
        if self.put_newer(operation, item).await? == Written::ConditionFailed {
            return Ok(false);
        }
        if self
            .delete_if(operation, found.key.clone(), found.rev, None)
            .await?
            == Written::ConditionFailed
        {
            self.delete_if(operation, own, found.rev + 1, None).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// The queued task `task` in a pack of one of the partitions `pks` (consistent reads): first the
    /// [`PACK_NEAR`] items of each just before the task's own place, then, if it is not there, the
    /// whole span before the task's greenfield that a pack holding it can start in.
    pub(crate) async fn packed(
        &self,
        operation: &'static str,
        pks: Vec<String>,
        task: &Task,
    ) -> Result<Vec<Found>> {
        if task.greenfield >= AHEAD_FLOOR {
            return Ok(Vec::new());
        }
        let low = order(task.greenfield.saturating_sub(PACK_SPAN));
        let high = format!("{}#\u{10ffff}", order(task.greenfield));
        for (limit, descending) in [(PACK_NEAR, true), (usize::MAX, false)] {
            let mut found = Vec::new();
            for pk in &pks {
                let read = super::Read {
                    operation,
                    pk: pk.clone(),
                    range: Some((low.clone(), high.clone())),
                    filter: None,
                    values: vec![],
                    limit,
                    descending,
                    consistent: true,
                };
                found.extend(
                    self.partition(read)
                        .await?
                        .into_iter()
                        .filter(|f| entry_of(&f.key) == Some(task.task_id.as_str())),
                );
            }
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, greenfield: i64) -> Task {
        let mut t = Task::new(id, "lab", serde_json::json!({"n": 1}), greenfield, 0.0);
        t.job_id = Some("job".into());
        t
    }

    fn plain(t: &Task, pk: &str) -> Item {
        let mut item = Item::from([
            ("pk".to_owned(), s(pk)),
            (
                "sk".to_owned(),
                s(format!("{}#{}", order(t.greenfield), t.task_id)),
            ),
        ]);
        item.insert("payload".to_owned(), s("{\"n\": 1}"));
        item.insert(REV.to_owned(), n(0));
        item
    }

    #[test]
    fn neighbours_of_one_partition_pack_and_unpack_to_the_items_they_would_be() {
        let (pack, items) = one_pack(5);
        let packed = [pack];
        assert!(item_size(&packed[0]) <= PACK_BYTES);
        let sk = packed[0]["sk"].as_s().expect("a string sort key");
        assert!(sk.ends_with(PACK_MARK) && sk.starts_with(&order(1000)));
        let back = unpack(&packed[0], "t").expect("decodes").expect("a pack");
        assert_eq!(back.len(), 5);
        for ((plain, entry), (t, original)) in back.iter().zip(&items) {
            let mut expected = original.clone();
            expected.remove("greenfield");
            assert_eq!(
                plain, &expected,
                "entry {} reads back as its own item",
                t.task_id
            );
            assert_eq!(entry_of(entry), Some(t.task_id.as_str()));
            assert_eq!(table_key(entry)["sk"], packed[0]["sk"]);
        }
    }

    #[test]
    fn packs_stop_at_a_partition_a_falling_greenfield_the_span_the_size_and_the_floor() {
        let a = task("job-1", 1000);
        let b = task("job-2", 2000);
        let other = task("job-3", 3000);
        let falling = task("job-4", 500);
        let far = task("job-5", 500 + PACK_SPAN + 1);
        let ahead = task("job-6", AHEAD_FLOOR);
        let items = vec![
            (a.clone(), plain(&a, "q#lab#0")),
            (b.clone(), plain(&b, "q#lab#0")),
            (other.clone(), plain(&other, "q#lab#1")),
            (falling.clone(), plain(&falling, "q#lab#1")),
            (far.clone(), plain(&far, "q#lab#1")),
            (ahead.clone(), plain(&ahead, "q#lab#1")),
        ];
        let packed = pack_items(items);
        let mut sizes: Vec<usize> = packed
            .iter()
            .map(|i| unpack(i, "t").expect("decodes").map_or(1, |e| e.len()))
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1, 1, 1, 2]);
        // Partitions interleaved (as shards spread a job's tasks): each still packs its own.
        let interleaved: Vec<(Task, Item)> = (1..=6)
            .map(|i| {
                let t = task(&format!("job-{i}"), i * 1000);
                let item = plain(&t, &format!("q#lab#{}", i % 2));
                (t, item)
            })
            .collect();
        let packed = pack_items(interleaved);
        assert_eq!(packed.len(), 2, "one pack per partition");
        for pack in &packed {
            let tasks = unpack(pack, "t").expect("decodes").expect("a pack");
            assert_eq!(tasks.len(), 3);
            assert!(tasks.iter().all(|(plain, _)| plain["pk"] == pack["pk"]));
        }
        // As many as fit in the size, and no more.
        let many: Vec<(Task, Item)> = (1..=100)
            .map(|i| {
                let t = task(&format!("job-{i}"), i * 1000);
                let item = plain(&t, "q#lab#0");
                (t, item)
            })
            .collect();
        let packed = pack_items(many);
        assert!(packed.len() > 1);
        assert!(packed.iter().all(|p| item_size(p) <= PACK_BYTES));
        // Full: each pack but the last has no room for another entry (about 25 bytes here).
        for p in &packed[..packed.len() - 1] {
            assert!(item_size(p) > PACK_BYTES - 40, "{} bytes", item_size(p));
        }
        let total: usize = packed
            .iter()
            .map(|i| unpack(i, "t").expect("decodes").map_or(1, |e| e.len()))
            .sum();
        assert_eq!(total, 100);
    }

    /// One pack of `count` small tasks of partition `q#lab#0`, and the items they were.
    fn one_pack(count: i64) -> (Item, Vec<(Task, Item)>) {
        let items: Vec<(Task, Item)> = (1..=count)
            .map(|i| {
                let t = task(&format!("job-{i}"), i * 1000);
                let item = plain(&t, "q#lab#0");
                (t, item)
            })
            .collect();
        let mut packed = pack_items(items.clone());
        assert_eq!(
            packed.len(),
            1,
            "{count} small items of one partition make one pack"
        );
        (packed.remove(0), items)
    }

    /// The names of `map`, sorted.
    fn sorted_names(map: &Item) -> Vec<&str> {
        let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn a_pack_keeps_its_ids_shared_start_once_and_its_fields_under_short_names() {
        let (pack, items) = one_pack(3);
        assert_eq!(pack[PREFIX], s("job-"), "the start the ids share");
        let AttributeValue::M(entries) = &pack[PACKED] else {
            panic!("a pack");
        };
        assert_eq!(
            sorted_names(entries),
            ["1", "2", "3"],
            "entries named by the rest of their ids"
        );
        let AttributeValue::M(fields) = &entries["2"] else {
            panic!("an entry");
        };
        assert_eq!(
            sorted_names(fields),
            ["g", "p", "r"],
            "greenfield, payload and move counter, short"
        );
        // What DynamoDB bills is what the packing counted: the short form is smaller than the
        // items it holds, each written alone.
        let alone: usize = items.iter().map(|(_, i)| item_size(i)).sum();
        assert!(
            item_size(&pack) < alone,
            "pack {} bytes, the items alone {alone}",
            item_size(&pack)
        );
        // The key of an entry carries the shared start; the table's key does not.
        let back = unpack(&pack, "t").expect("decodes").expect("a pack");
        let (_, key) = &back[1];
        assert_eq!(entry_of(key), Some("job-2"));
        assert_eq!(entry_place(key), Some(("2".to_owned(), true)));
        assert_eq!(table_key(key).len(), 2, "pk and sk alone");
    }

    #[test]
    fn ids_share_a_start_on_a_character_boundary_never_a_whole_id() {
        assert_eq!(shared_start("job-1", "job-2"), 4);
        assert_eq!(
            shared_start("job-1", "job-10"),
            4,
            "one id starts the other"
        );
        assert_eq!(shared_start("abc", "xyz"), 0);
        assert_eq!(shared_start("tâche-1", "tâche-2"), "tâche-".len());
        assert_eq!(shared_start("é1", "é2"), "é".len());
        assert_eq!(shared_start("aé", "aè"), 1, "never inside a character");
        // Ids that share no start are not packed together.
        let a = task("alpha", 1000);
        let b = task("beta", 2000);
        let packed = pack_items(vec![
            (a.clone(), plain(&a, "q#lab#0")),
            (b.clone(), plain(&b, "q#lab#0")),
        ]);
        assert_eq!(packed.len(), 2);
        assert!(packed.iter().all(|p| !p.contains_key(PACKED)));
    }

    #[test]
    fn a_pack_of_the_first_form_reads_as_it_was_written() {
        // As the build of 2026-12-06 wrote packs before the short form: whole ids, long names.
        let entry = |gf: i64| {
            AttributeValue::M(Item::from([
                ("payload".to_owned(), s("{\"n\": 1}")),
                ("greenfield".to_owned(), n(gf)),
                (REV.to_owned(), n(0)),
            ]))
        };
        let first = task("job-1", 1000);
        let pack = Item::from([
            ("pk".to_owned(), s("q#lab#0")),
            ("sk".to_owned(), s(pack_sk(&first))),
            (
                PACKED.to_owned(),
                AttributeValue::M(Item::from([
                    ("job-1".to_owned(), entry(1000)),
                    ("job-2".to_owned(), entry(2000)),
                ])),
            ),
        ]);
        let back = unpack(&pack, "t").expect("decodes").expect("a pack");
        assert_eq!(back.len(), 2);
        let (item, key) = &back[1];
        assert_eq!(item["sk"], s(format!("{}#job-2", order(2000))));
        assert_eq!(item["payload"], s("{\"n\": 1}"));
        assert_eq!(entry_place(key), Some(("job-2".to_owned(), false)));
        let ids = entry_ids(&pack, &table_key(key), "t")
            .expect("decodes")
            .expect("a pack");
        assert!(ids.iter().any(|(id, k)| id == "job-2" && k == key));
    }

    #[test]
    fn a_pack_this_layout_did_not_write_is_a_decode_error_naming_the_table_and_the_task() {
        let (pack, _) = one_pack(2);
        let edit = |f: &dyn Fn(&mut Item)| {
            let mut pack = pack.clone();
            let Some(AttributeValue::M(entries)) = pack.get_mut(PACKED) else {
                panic!("a pack");
            };
            f(entries);
            pack
        };
        let not_a_map = edit(&|e| {
            e.insert("2".into(), s("oops"));
        });
        let no_greenfield = edit(&|e| {
            if let Some(AttributeValue::M(fields)) = e.get_mut("1") {
                fields.remove("g");
            }
        });
        for (bad, id) in [(not_a_map, "job-2"), (no_greenfield, "job-1")] {
            let message = decode_all(bad, "sosw_lean")
                .map(|found| found.len())
                .expect_err("a corrupt entry must not be skipped")
                .to_string();
            assert!(
                message.contains("sosw_lean") && message.contains(id),
                "names the table and the task: {message}"
            );
        }
        let mut not_a_map_at_all = pack.clone();
        not_a_map_at_all.insert(PACKED.into(), s("oops"));
        assert!(unpack(&not_a_map_at_all, "sosw_lean").is_err());
        let mut prefix_not_a_string = pack.clone();
        prefix_not_a_string.insert(PREFIX.into(), n(1));
        assert!(unpack(&prefix_not_a_string, "sosw_lean").is_err());
        assert!(entry_ids(&prefix_not_a_string, &table_key(&pack), "sosw_lean").is_err());
        assert!(entry_ids(&not_a_map_at_all, &table_key(&pack), "sosw_lean").is_err());
        assert_eq!(
            decode_all(pack, "sosw_lean")
                .expect("a pack as written")
                .len(),
            2
        );
    }
}
