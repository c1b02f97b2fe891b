//! Integration tests of sosw: see `tests/`.
