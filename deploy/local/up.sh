#!/usr/bin/env bash
# Starts the local services (all by default, or those named: kafka registry clickhouse chdb) and waits
# until each is healthy. Services already running are left as they are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=("$@")
((${#services[@]})) || services=(kafka registry clickhouse chdb)
started=$(date +%s)
for s in "${services[@]}"; do
  [[ -x "$here/$s.sh" ]] || { echo "[up] ERROR: unknown service '$s' (kafka, registry, clickhouse, chdb)" >&2; exit 2; }
  "$here/$s.sh" start
done
echo "[up] ${services[*]}: up in $(($(date +%s) - started))s"
