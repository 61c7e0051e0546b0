#!/usr/bin/env bash
# Puts Node.js 24 LTS first on PATH, installing it from the npm registry into a cache directory
# the first time (the machine's own Node may be older). Source it: `. scripts/node24.sh`,
# or run a command through it: `scripts/node24.sh npm test`.
set -euo pipefail
TALLY_NODE_HOME="${TALLY_NODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-node}"
want_major=24
if [ ! -x "$TALLY_NODE_HOME/node_modules/.bin/node" ] ||
   [ "$("$TALLY_NODE_HOME/node_modules/.bin/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$want_major" ]; then
  mkdir -p "$TALLY_NODE_HOME"
  echo "node24: installing node@$want_major into $TALLY_NODE_HOME" >&2
  npm install --no-save --no-audit --no-fund --prefix "$TALLY_NODE_HOME" "node@$want_major" >&2
fi
export PATH="$TALLY_NODE_HOME/node_modules/.bin:$PATH"
if [ "${BASH_SOURCE[0]}" = "$0" ] && [ $# -gt 0 ]; then exec "$@"; fi
