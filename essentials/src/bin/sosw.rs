//! `sosw`: the command line. Run `sosw --help`; the subcommands are in [`sosw_essentials::cli`].

fn main() -> std::process::ExitCode {
    sosw_essentials::cli::main()
}
