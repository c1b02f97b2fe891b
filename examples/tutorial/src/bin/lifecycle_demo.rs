//! The task lifecycle demo ([`sosw_tutorial::lifecycle_demo`]):
//! `cargo run -p sosw-tutorial --bin lifecycle-demo -- [state.sqlite]`.

use std::path::Path;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let state = std::env::args().nth(1);
    match sosw_tutorial::lifecycle_demo::run(state.as_deref().map(Path::new)).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lifecycle-demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}
