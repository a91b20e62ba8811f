#!/usr/bin/env bash
# Check out a baseline revision (default: 6f8ad2e, the main before issue 8) in its own git
# worktree with its own .venv, for the benchmarks' --baseline option.
#   bash benchmarks/make_baseline.sh [REV] [DIR]
set -euo pipefail
rev=${1:-6f8ad2e}
dir=${2:-../genrebot-baseline}
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$dir" ]; then
  git -C "$repo" worktree add --detach "$dir" "$rev"
fi
bash "$dir/scripts/setup.sh"
echo "baseline $(git -C "$dir" log --oneline -1) is ready in $dir"
