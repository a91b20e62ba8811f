#!/usr/bin/env bash
# Proof that the images build and the compose stack starts, serves, retrains and stops cleanly.
#
#   bash deploy/smoke.sh            (from anywhere; run by hand, ~10-20 min on 2 cores, not in CI)
#
# 1. Uses docker if a docker engine answers, else podman; installs podman with
#    ../shared/containers/setup-podman.sh (beside the repository) when neither is there.
# 2. Builds the serving image (genrebot, no extras) and the compose image (genrebot-scale, extras
#    train,ray,postgres); prints their sizes; checks the serving image decodes every accepted format
#    (deploy/decode_check.py: mp3, wav 16/24/float, ogg, opus, flac, m4a, au, webm, audio in mp4).
# 3. Brings up deploy/compose.yaml + deploy/compose.smoke.yaml (project genrebot-smoke): PostgreSQL,
#    Ray head + 2 workers, bot-a (shards 0-1), bot-b (shards 2-3) and the fake Discord
#    (deploy/smoke_driver.py; never discord.com), which runs /genre on all four shards, a /retrain,
#    and /genre again: both bots must serve the promoted model.
# 4. Stops every container with SIGTERM (bots first, then Ray workers, head, PostgreSQL), and prints
#    start-up time, restarts per service (must be 0), stop time and exit code per container.
#
# Environment: SMOKE_SKIP_BUILD=1 reuses the images; SMOKE_KEEP=1 leaves the stack up (no stop);
# SMOKE_TIMEOUT (s, default 1800) bounds the scenario. Exit status 0 only if everything passed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
project=genrebot-smoke
timeout="${SMOKE_TIMEOUT:-1800}"
failures=()
fail() { failures+=("$*"); echo "FAIL: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    engine=docker; compose=(docker compose)
else
    if ! command -v podman >/dev/null 2>&1 || ! command -v podman-compose >/dev/null 2>&1; then
        setup="$repo/../shared/containers/setup-podman.sh"
        [ -f "$setup" ] || { echo "no docker engine, no podman, and no $setup" >&2; exit 2; }
        echo "== installing podman ($setup)"
        bash "$setup"
    fi
    engine=podman; compose=(podman-compose)
fi
echo "== engine: $engine"

# Secrets for this throwaway stack only (the environment wins over deploy/.env, which is not read or touched).
export DISCORD_TOKEN="smoke-token-for-the-fake-discord"
export POSTGRES_PASSWORD="smoke-$(date +%s)"
export RAY_AUTH_TOKEN="smoke-ray-token-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
files=(-f "$here/compose.yaml" -f "$here/compose.smoke.yaml")
dc() { "${compose[@]}" -p "$project" "${files[@]}" "$@"; }

size() { "$engine" image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

if [ -z "${SMOKE_SKIP_BUILD:-}" ]; then
    for spec in "genrebot:" "genrebot-scale:train,ray,postgres"; do
        tag="${spec%%:*}"; extras="${spec#*:}"
        t="$(now)"
        echo "== building $tag (EXTRAS=${extras:-none})"
        log="${TMPDIR:-/tmp}/genrebot-smoke-build-$tag.log"
        "$engine" build --build-arg "EXTRAS=$extras" -t "$tag" "$repo" >"$log" 2>&1 \
            || { tail -40 "$log"; echo "build of $tag failed (log: $log)" >&2; exit 1; }
        echo "   built in $(since "$t") s"
    done
fi
echo "== image sizes: genrebot $(size genrebot) (serving), genrebot-scale $(size genrebot-scale) (compose)"
echo "== decode check (serving image)"
"$engine" run -i --rm --entrypoint python genrebot - < "$here/decode_check.py" || fail "the serving image does not decode every format"

echo "== compose up"
dc down -v >/dev/null 2>&1 || true
t0="$(now)"
dc up -d >/dev/null 2>&1 || { dc up -d; exit 1; }
echo "   containers created in $(since "$t0") s"

containers() { "$engine" ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}' | sort; }
driver="$(containers | grep fakediscord)"
result=""
started=""
deadline=$(( $(date +%s) + timeout ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    log="$("$engine" logs "$driver" 2>&1 || true)"
    if [ -z "$started" ] && grep -q "START READY" <<<"$log"; then
        started="$(since "$t0")"
        echo "   all 4 shards connected and commands registered $started s after compose up"
    fi
    if result="$(grep -m1 -E "SMOKE (PASSED|FAILED)" <<<"$log")"; then break; fi
    sleep 5
done
echo "== start-up per container (s after compose up: running, then ready as its log says)"
ready_marker() {
    case "$1" in
        *_postgres_*) echo "database system is ready to accept connections" ;;
        *_ray-head_*) echo "Ray and Serve are up" ;;
        *_ray-worker_*) echo "Ray runtime started" ;;
        *_bot-*) echo "logged in as" ;;
        *_fakediscord_*) echo "START READY" ;;
    esac
}
epoch() { date -d "$1" +%s.%N 2>/dev/null || echo ""; }
for c in $(containers); do
    began="$(epoch "$("$engine" inspect --format '{{.State.StartedAt}}' "$c" | sed 's/ +0000 UTC//; s/ UTC$//')")"
    line="$("$engine" logs -t "$c" 2>&1 | grep -m1 -- "$(ready_marker "$c")" || true)"
    ready="$(epoch "${line%% *}")"
    awk -v t0="$t0" -v b="$began" -v r="$ready" -v c="$c" 'BEGIN {
        printf "   %-32s running at %5s, ready at %s\n", c, (b == "" ? "?" : sprintf("%.1f", b - t0)),
               (r == "" ? "(no ready line)" : sprintf("%.1f", r - t0)) }'
done

echo "== fake Discord's account"
"$engine" logs "$driver" 2>&1 | grep -E "^\[" | sed 's/^/   /'
case "$result" in
    *"SMOKE PASSED"*) echo "== scenario passed" ;;
    "") fail "the scenario did not finish within $timeout s" ;;
    *) fail "${result#*] }" ;;
esac

echo "== restarts per container"
for c in $(containers); do
    n="$("$engine" inspect --format '{{.RestartCount}}' "$c")"
    printf '   %-32s %s\n' "$c" "$n"
    [ "$n" = 0 ] || fail "$c restarted $n times"
done

if [ -n "${SMOKE_KEEP:-}" ]; then echo "== SMOKE_KEEP: the stack stays up (${compose[*]} -p $project ... down -v)"; exit 0; fi

echo "== stop with SIGTERM (grace: bots 40 s, others 30 s)"
stop_order() {  # bots first (they drain and leave Ray), then the driver, Ray workers, head, PostgreSQL
    local all; all="$(containers)"
    for pat in _bot- _fakediscord_ _ray-worker_ _ray-head_ _postgres_; do grep -- "$pat" <<<"$all" || true; done
}
for c in $(stop_order); do
    case "$c" in *_bot-*) grace=40 ;; *) grace=30 ;; esac
    t="$(now)"
    "$engine" stop -t "$grace" "$c" >/dev/null 2>&1  # podman: "unable to get systemd connection" is harmless
    took="$(since "$t")"
    code="$("$engine" inspect --format '{{.State.ExitCode}}' "$c")"
    printf '   %-32s stopped in %5s s (grace %s s), exit code %s\n' "$c" "$took" "$grace" "$code"
    awk -v a="$took" -v g="$grace" 'BEGIN { exit !(a < g) }' || fail "$c needed its whole grace period (killed)"
done
dc down -v >/dev/null 2>&1 || true

if [ "${#failures[@]}" -gt 0 ]; then
    echo "== SMOKE FAILED:"; printf '   %s\n' "${failures[@]}"; exit 1
fi
echo "== SMOKE PASSED"
