//! Single-item writes that fail on their way to DynamoDB Local, for moves stopped halfway.
//!
//! [`FailedWrites`] is an SDK interceptor for the DynamoDB client: a seeded share of `PutItem`,
//! `DeleteItem` and `UpdateItem` requests is sent, at every attempt, to a port nothing listens on
//! instead of DynamoDB Local. The caller gets a dispatch failure (retryable) once the SDK's attempts
//! are used up, as for a request throttled past the SDK's retries or cut off by a killed process,
//! and the write does not happen. A move made
//! of two writes whose second write fails leaves the task where a mover stopped halfway leaves it:
//! in two places. The store-level faults (`FaultyStore`) fail whole store calls and never reach
//! inside one, so these are what exercise the lean layout's recovery from its own stopped moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::seeded::Sequence;

/// Where a failing write is sent: the discard port, which nothing on the test machines listens on,
/// so the connection is refused at once.
const NOWHERE: &str = "http://127.0.0.1:9/";

/// Marks one operation as failing, in its config bag, for every attempt of it.
#[derive(Debug, Clone)]
struct Failing;

impl Storable for Failing {
    type Storer = StoreReplace<Self>;
}

/// Fails a seeded share of single-item writes (see the module docs). Clones share their sequence
/// and count: install one clone in the client, read the count from another.
#[derive(Debug, Clone)]
pub struct FailedWrites {
    rate: f64,
    sequence: Sequence,
    failed: Arc<AtomicU64>,
}

impl FailedWrites {
    /// Fails each single-item write with probability `rate`, seeded by `seed`.
    pub fn new(rate: f64, seed: u64) -> Self {
        FailedWrites {
            rate,
            // Another sequence than `UnprocessedItems` of the same seed.
            sequence: Sequence::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            failed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many writes failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl Intercept for FailedWrites {
    fn name(&self) -> &'static str {
        "FailedWrites"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let input = context.input();
        let single_write = input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<DeleteItemInput>().is_some()
            || input.downcast_ref::<UpdateItemInput>().is_some();
        if single_write && self.sequence.next() < self.rate {
            self.failed.fetch_add(1, Ordering::Relaxed);
            cfg.interceptor_state().store_put(Failing);
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Failing>().is_some() {
            context.request_mut().set_uri(NOWHERE)?;
        }
        Ok(())
    }
}
