//! `replicated-kv`: DistZero's whole command line for the replicated key-value store — `run` in
//! simulated and virtual mode, seed sweeps with replay commands, traces, `machine` (what each
//! container runs) and `clean`.

fn main() -> std::process::ExitCode {
    dist_zero::main(replicated_kv::KvApp)
}
