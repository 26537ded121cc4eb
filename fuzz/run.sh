#!/usr/bin/env bash
# Runs each cargo-fuzz target for TARGET_SECONDS (default 60), one after another.
#
#   fuzz/run.sh TARGET_SECONDS [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs go to
# fuzz/work/<target> (not committed); the committed seeds in fuzz/corpus/<target> are only
# read. A crash is saved under fuzz/artifacts/<target>/ and stops that target's run.
set -euo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build
status=0
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "corpus/$target"
    echo "== $target: ${seconds}s"
    if ! cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1; then
        echo "== $target: found something, see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
