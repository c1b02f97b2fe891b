//! Embedded adapters for local mode. (Being written.)
