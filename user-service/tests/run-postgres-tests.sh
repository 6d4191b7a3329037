#!/usr/bin/env bash
# Runs the user service's PostgreSQL tests (called by `make test-unit`).
#
# They are #[ignore]d, so a plain `cargo test` lists them as ignored rather
# than passing them unrun (cargo has no skip decided at run time). Here they
# run with `--ignored` when something listens at the PostgreSQL address of
# ALB_OIDC_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
# When nothing does, they are reported SKIPPED; with ALB_OIDC_NO_SKIP=1 (CI)
# that is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo=${CARGO:-cargo}
url=${ALB_OIDC_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
if [[ $url =~ ^postgres(ql)?://([^@/]*@)?([^:/?]+)(:([0-9]+))? ]]; then
    host=${BASH_REMATCH[3]}
    port=${BASH_REMATCH[5]:-5432}
else
    echo "ALB_OIDC_TEST_PG_URL=$url: expected postgres://[user@]host[:port]/database" >&2
    exit 2
fi

# --workspace, as `make test-unit` builds: `-p` would resolve features for the
# user service alone and build it (and sqlx) a second time. `pg::` selects
# the PostgreSQL half of the tests (both_backends! in tests/common).
run=("$cargo" test --workspace -- --ignored pg::)
if timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    exec "${run[@]}"
fi

count=$("${run[@]}" --list 2>/dev/null | grep -c ': test$' || true)
if [ "${ALB_OIDC_NO_SKIP:-}" = 1 ]; then
    echo "FAILED: $count user-service PostgreSQL tests cannot run: nothing listens at $host:$port" \
        "(ALB_OIDC_TEST_PG_URL) and ALB_OIDC_NO_SKIP=1 forbids skipping them" >&2
    exit 1
fi
echo "SKIPPED: $count user-service PostgreSQL tests: nothing listens at $host:$port" \
    "(ALB_OIDC_TEST_PG_URL; ALB_OIDC_NO_SKIP=1 makes this a failure)" >&2
