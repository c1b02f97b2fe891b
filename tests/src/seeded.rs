//! The seeded sequence the request-level fault injectors draw from.

use std::sync::{Arc, Mutex};

/// Numbers in `[0, 1)` from a xorshift sequence of a seed. Clones share the sequence.
#[derive(Debug, Clone)]
pub(crate) struct Sequence(Arc<Mutex<u64>>);

impl Sequence {
    pub(crate) fn new(seed: u64) -> Self {
        Sequence(Arc::new(Mutex::new(seed | 1)))
    }

    /// The next number of the sequence.
    pub(crate) fn next(&self) -> f64 {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }
}
