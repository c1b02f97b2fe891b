//! Real `UnprocessedItems` from DynamoDB Local, which never returns any on its own.
//!
//! [`UnprocessedItems`] is an SDK interceptor for the DynamoDB client. Before a `BatchWriteItem` is
//! serialised, it takes a seeded share of the batch's write requests out of the request; DynamoDB Local
//! writes the rest, for real; before the response reaches the caller, the requests taken out are
//! added to its `UnprocessedItems`. The caller sees exactly what a throttled DynamoDB table answers:
//! part of the batch written, the other part to be sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::WriteRequest;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::seeded::Sequence;

/// The write requests taken out of one `BatchWriteItem`, per table, kept in the request's config bag
/// between the two hooks.
#[derive(Debug, Clone)]
struct TakenOut(HashMap<String, Vec<WriteRequest>>);

impl Storable for TakenOut {
    type Storer = StoreReplace<Self>;
}

/// Turns a share of every batch write into `UnprocessedItems` (see the module docs). Clones share
/// their sequence and count: install one clone in the client, read the count from another.
#[derive(Debug, Clone)]
pub struct UnprocessedItems {
    rate: f64,
    sequence: Sequence,
    taken: Arc<AtomicU64>,
}

impl UnprocessedItems {
    /// Leaves each write request of a batch unprocessed with probability `rate`, seeded by `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        UnprocessedItems {
            rate,
            sequence: Sequence::new(seed),
            taken: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many write requests were returned unprocessed so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }
}

impl Intercept for UnprocessedItems {
    fn name(&self) -> &'static str {
        "UnprocessedItems"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = context.input_mut().downcast_mut::<BatchWriteItemInput>() else {
            return Ok(());
        };
        let Some(items) = input.request_items.as_mut() else {
            return Ok(());
        };
        let mut taken: HashMap<String, Vec<WriteRequest>> = HashMap::new();
        for (table, requests) in items.iter_mut() {
            // At least one request stays in the batch: DynamoDB refuses an empty one.
            let mut kept = Vec::with_capacity(requests.len());
            for request in requests.drain(..) {
                if self.sequence.next() < self.rate {
                    taken.entry(table.clone()).or_default().push(request);
                } else {
                    kept.push(request);
                }
            }
            if kept.is_empty()
                && let Some(back) = taken.get_mut(table).and_then(Vec::pop)
            {
                kept.push(back);
            }
            *requests = kept;
        }
        let count: usize = taken.values().map(Vec::len).sum();
        self.taken.fetch_add(count as u64, Ordering::Relaxed);
        cfg.interceptor_state().store_put(TakenOut(taken));
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(TakenOut(taken)) = cfg.load::<TakenOut>().cloned() else {
            return Ok(());
        };
        if taken.is_empty() {
            return Ok(());
        }
        let Some(Ok(output)) = context.output_or_error_mut() else {
            // The call failed as a whole: the caller sends the whole batch again anyway.
            return Ok(());
        };
        if let Some(output) = output.downcast_mut::<BatchWriteItemOutput>() {
            let unprocessed = output.unprocessed_items.get_or_insert_with(HashMap::new);
            for (table, requests) in taken {
                unprocessed.entry(table).or_default().extend(requests);
            }
        }
        Ok(())
    }
}
