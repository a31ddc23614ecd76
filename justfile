# Recipes for working on the host. `just --list` shows them.

# Run an example (default: the web API beside its worker).
run example="web":
    cargo run --example {{example}}

# Every test, as CI runs them.
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The benchmarks, with peers in the same run; prints the tables for docs/benchmarks.md.
# Installs wrk (the web bench's load generator) first if it is missing.
bench:
    bash benchmarks/ensure-wrk.sh
    cargo bench -p host-benchmarks

# The benchmarks in quick mode: seconds per bench, the same ratios printed.
# Run it before and after a change to a hot path; the machine is noisy, so it
# is indicative only and no part of CI.
bench-quick:
    bash benchmarks/ensure-wrk.sh
    HOST_BENCH_QUICK=1 cargo bench -p host-benchmarks

# The API docs, with every feature.
doc:
    cargo doc --workspace --no-deps --all-features

# Everything CI does.
ci:
    bash .ci/run

# The fault-injection suite at length: 1 000 seeds of hosts of 100 faulty
# services on a paused clock, then 100 seeds of host processes whose
# threads block (see docs/testing.md). Replay a seed with HOST_FAULT_SEED=n.
# Then a cluster-wide schedule on 3 to 5 processes killed at random for
# 5 minutes per store and mode (needs HOST_TEST_POSTGRES_URL; replay a
# seed with HOST_CLUSTER_SOAK_SEED=n).
soak:
    HOST_FAULT_SEEDS=1000 cargo test -p host-core --release --test faults -- --nocapture
    HOST_FAULT_PROCESS_SEEDS=100 cargo test -p host-core --release --test faults_process -- --nocapture
    HOST_CLUSTER_SOAK_SECS=300 cargo test -p host-core --release --test cluster_soak -- --nocapture
