#!/usr/bin/env bash
# Fetches and installs what the local services need without starting them (Maven artifacts for Kafka
# and Apicurio Registry, the Debian package of ClickHouse), so CI can do it once up front.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=("$@")
((${#services[@]})) || services=(kafka registry clickhouse chdb)
for s in "${services[@]}"; do
  [[ -x "$here/$s.sh" ]] || { echo "[provision] ERROR: unknown service '$s' (kafka, registry, clickhouse, chdb)" >&2; exit 2; }
  "$here/$s.sh" provision
done
