//! The conformance suite every `TaskStore` passes. (Being written.)
