// mimalloc instead of glibc malloc: measured faster per request (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trellis_cli::main_from_args(std::env::args().collect())
}
