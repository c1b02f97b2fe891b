//! The essentials on Lambda: each essential's Lambda service called with a `LambdaEvent`, the AWS
//! wiring from config rows and environment, and the real binaries as processes against a Lambda Runtime
//! API test server.
//!
//! One test binary (each links the AWS SDK): a module per former test file, so test names read
//! `lambda::<file>::<test>`. The `sosw` command line's tests are the other binary of this package
//! (`cli`).

mod lambda {
    mod aws_wiring;
    mod handlers;
    mod lean_layout;
    mod runtime_api;
}
