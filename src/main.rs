//! Entry point: hands the command line to `cli`, turns any error into one line and an exit code.

fn main() -> std::process::ExitCode {
    desert_atlas::cli::main()
}
