#!/usr/bin/env bash
# Check out a baseline revision in its own git worktree with its own .venv, for the benchmarks'
# --baseline option (they then run both checkouts in the same run, interleaved).
#   bash benchmarks/make_baseline.sh REF [DIR]      e.g. REF = the main before your change
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash benchmarks/make_baseline.sh REF [DIR]   (REF: a commit, tag or branch to compare against)" >&2
  exit 2
fi
rev=$1
dir=${2:-../genrebot-baseline}
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$dir" ]; then
  git -C "$repo" worktree add --detach "$dir" "$rev"
fi
bash "$dir/scripts/setup.sh"
echo "baseline $(git -C "$dir" log --oneline -1) is ready in $dir"
