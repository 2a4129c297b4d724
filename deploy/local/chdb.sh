#!/usr/bin/env bash
# chDB: ClickHouse embedded in the Node process (npm package "chdb"). There is no server, so start and
# stop only check it; data of a session-based chDB lives wherever the code that opens it says.
#
#   deploy/local/chdb.sh provision   check that the package is installed (npm ci installs it)
#   deploy/local/chdb.sh start       same as status (nothing to start)
#   deploy/local/chdb.sh stop        nothing to stop
#   deploy/local/chdb.sh status      load chdb and run SELECT 1; exit 0 when it answers
set -euo pipefail
ECOS_SERVICE=chdb
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

installed() {
  [[ -f "$ECOS_REPO_DIR/node_modules/chdb/package.json" ]] ||
    die "the npm package chdb is missing: run 'npm ci' in $ECOS_REPO_DIR"
}

status() {
  require_cmd node "install Node.js 20"
  installed
  local out
  if ! out="$(cd "$ECOS_REPO_DIR" && node -e '
    const { query } = require("chdb");
    const row = JSON.parse(query("SELECT 1 AS one, version() AS version", "JSONEachRow").trim());
    if (row.one !== 1) throw new Error("SELECT 1 returned " + JSON.stringify(row));
    console.log(row.version);
  ' 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "chdb did not answer SELECT 1 (see above); try 'npm ci' to reinstall its prebuilt library"
  fi
  log "embedded chDB answers SELECT 1 (engine $out)"
}

case "${1:-}" in
  provision)
    installed
    log "npm package chdb present"
    ;;
  start | status) status ;;
  stop) log "embedded; nothing to stop" ;;
  restart) status ;;
  *) usage ;;
esac
