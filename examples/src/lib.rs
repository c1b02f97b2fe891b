//! Example sosw workers, jobs and configs.
