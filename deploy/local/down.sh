#!/usr/bin/env bash
# Stops the local services (all by default, or those named). Stopping a stopped service is a no-op.
# Data stays in $ECOS_LOCAL_DIR; remove that folder for a clean slate.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=("$@")
((${#services[@]})) || services=(clickhouse registry kafka)
status=0
for s in "${services[@]}"; do
  [[ -x "$here/$s.sh" ]] || { echo "[down] ERROR: unknown service '$s' (kafka, registry, clickhouse, chdb)" >&2; exit 2; }
  "$here/$s.sh" stop || status=1
done
exit "$status"
