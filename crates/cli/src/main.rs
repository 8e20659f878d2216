// mimalloc instead of glibc malloc: measured faster per request (see BENCHMARKS.md).
// Off with `--no-default-features`, so heap profilers (massif) see every allocation.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trellis_cli::main_from_args(std::env::args().collect())
}
