fn main() -> std::process::ExitCode {
    trellis_cli::main_from_args(std::env::args().collect())
}
