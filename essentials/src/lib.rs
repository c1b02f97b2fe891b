//! The sosw essentials as executables: see `src/bin/`.
