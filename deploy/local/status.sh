#!/usr/bin/env bash
# Reports each local service (all by default, or those named). Exits 0 only when every one is healthy.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=("$@")
((${#services[@]})) || services=(kafka registry clickhouse chdb)
status=0
for s in "${services[@]}"; do
  [[ -x "$here/$s.sh" ]] || { echo "[status] ERROR: unknown service '$s' (kafka, registry, clickhouse, chdb)" >&2; exit 2; }
  "$here/$s.sh" status || status=1
done
exit "$status"
