//! Typed configuration with sosw 0.7's layering. (Being written.)
