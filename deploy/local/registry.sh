#!/usr/bin/env bash
# Apicurio Registry 3 (schema registry with a Confluent-compatible API at /apis/ccompat/v7), from
# its Maven Central distribution io.apicurio:apicurio-registry-app:<version>:tar.gz:all (the Quarkus
# fast-jar layout, started with quarkus-run.jar). Storage is the default in-memory H2 database, so
# schemas are gone after a restart. It needs Java 21 or newer (its classes are Java 21 bytecode).
#
#   deploy/local/registry.sh provision   fetch and unpack the distribution into $ECOS_LOCAL_DIR/registry/app
#   deploy/local/registry.sh start       provision if needed, start, wait for /health/ready to say UP
#   deploy/local/registry.sh stop        stop it
#   deploy/local/registry.sh status      print whether it runs and is ready; exit 0 only when ready
#   deploy/local/registry.sh restart     stop, then start
#
# Settings: ECOS_LOCAL_DIR, ECOS_REGISTRY_PORT, ECOS_REGISTRY_MANAGEMENT_PORT, ECOS_REGISTRY_VERSION,
# ECOS_REGISTRY_HEAP, ECOS_REGISTRY_JAVA_HOME, ECOS_START_TIMEOUT, ECOS_STOP_TIMEOUT
# (see docs/local-infrastructure.md).
set -euo pipefail
ECOS_SERVICE=registry
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ECOS_REGISTRY_VERSION="${ECOS_REGISTRY_VERSION:-3.3.3}"
check_port_number ECOS_REGISTRY_PORT "$ECOS_REGISTRY_PORT"
# Quarkus serves /health on a separate management interface; it is bound to loopback next to the API.
ECOS_REGISTRY_MANAGEMENT_PORT="${ECOS_REGISTRY_MANAGEMENT_PORT:-$((ECOS_REGISTRY_PORT + 1))}"
ECOS_REGISTRY_HEAP="${ECOS_REGISTRY_HEAP:-512m}"
check_port_number ECOS_REGISTRY_MANAGEMENT_PORT "$ECOS_REGISTRY_MANAGEMENT_PORT"

ARTIFACT="io.apicurio:apicurio-registry-app:$ECOS_REGISTRY_VERSION:tar.gz:all"
DIR="$ECOS_LOCAL_DIR/registry"
APP="$DIR/app"
LOGS="$DIR/logs"
PID_FILE="$DIR/registry.pid"
LOG_FILE="$LOGS/registry.log"
PROVISIONED="$APP/.provisioned-$ECOS_REGISTRY_VERSION"
READY_URL="http://127.0.0.1:$ECOS_REGISTRY_MANAGEMENT_PORT/health/ready"
CCOMPAT_URL="http://127.0.0.1:$ECOS_REGISTRY_PORT/apis/ccompat/v7"

java_home() {
  if [[ -n "${ECOS_REGISTRY_JAVA_HOME:-}" ]]; then
    [[ -x "$ECOS_REGISTRY_JAVA_HOME/bin/java" ]] || die "ECOS_REGISTRY_JAVA_HOME=$ECOS_REGISTRY_JAVA_HOME has no bin/java"
    printf '%s\n' "$ECOS_REGISTRY_JAVA_HOME"
    return 0
  fi
  find_jdk 21 || die "Apicurio Registry needs Java 21 or newer and none was found under /usr/lib/jvm; install one (e.g. Temurin 25) and/or set ECOS_REGISTRY_JAVA_HOME to its home"
}

provision() {
  if [[ -f "$PROVISIONED" ]]; then
    log "Apicurio Registry $ECOS_REGISTRY_VERSION already provisioned in $APP"
    return 0
  fi
  require_cmd mvn "install Maven (apt-get install maven); it fetches the registry from Maven Central"
  log "provisioning Apicurio Registry ($ARTIFACT) from Maven Central into $APP"
  local started tmp archive
  started="$(now_ms)"
  tmp="$DIR/download.tmp"
  rm -rf "$tmp" "$DIR/app.tmp"
  mkdir -p "$tmp" "$DIR/app.tmp"
  # The plugin is named with its version so the goal runs without a project of ours.
  if ! (cd "$tmp" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$ARTIFACT" -DoutputDirectory="$tmp") >"$DIR/provision.log" 2>&1; then
    show_logs "$DIR/provision.log"
    die "Maven could not fetch $ARTIFACT; check the network to Maven Central or choose another ECOS_REGISTRY_VERSION"
  fi
  archive="$(find "$tmp" -name '*.tar.gz' | head -n 1)"
  [[ -n "$archive" ]] || die "Maven fetched no archive for $ARTIFACT (see $DIR/provision.log)"
  tar -xzf "$archive" -C "$DIR/app.tmp"
  [[ -f "$DIR/app.tmp/quarkus-run.jar" ]] || die "$ARTIFACT has no quarkus-run.jar; this script expects the Quarkus fast-jar layout of Apicurio Registry 3"
  rm -rf "$APP" "$tmp"
  mv "$DIR/app.tmp" "$APP"
  touch "$PROVISIONED"
  log "provisioned in $(elapsed_s "$started")s"
}

ready() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => r.json())
      .then((b) => process.exit(b && b.status === "UP" ? 0 : 1), () => process.exit(1));
  ' "$READY_URL"
}

start() {
  local pid
  if pid="$(live_pid "$PID_FILE" "$APP/quarkus-run.jar")"; then
    if ready >/dev/null 2>&1; then
      log "already running (pid $pid); Confluent API at $CCOMPAT_URL"
      return 0
    fi
    log "running (pid $pid) but not ready yet; waiting"
    wait_healthy "$PID_FILE" "$APP/quarkus-run.jar" ready "$LOG_FILE"
    log "ready; Confluent API at $CCOMPAT_URL"
    return 0
  fi
  require_cmd node "install Node.js 20; the health check uses it"
  provision
  require_free_port ECOS_REGISTRY_PORT "$ECOS_REGISTRY_PORT"
  require_free_port ECOS_REGISTRY_MANAGEMENT_PORT "$ECOS_REGISTRY_MANAGEMENT_PORT"
  mkdir -p "$LOGS"
  rotate_logs "$LOG_FILE"
  local jh started
  jh="$(java_home)"
  started="$(now_ms)"
  log "starting Apicurio Registry $ECOS_REGISTRY_VERSION with $jh on 127.0.0.1:$ECOS_REGISTRY_PORT (health on :$ECOS_REGISTRY_MANAGEMENT_PORT)"
  # Start-up time matters more than peak speed for a local registry: C1 only, and a class-data
  # archive that the JVM writes at the first stop and maps on later starts (about 4.5 s -> 2.5 s).
  # Per-request audit and access log lines are turned down: the health polls would flood the log.
  (
    cd "$APP"
    spawn "$PID_FILE" "$LOG_FILE" "$jh/bin/java" "-Xmx$ECOS_REGISTRY_HEAP" -XX:+UseSerialGC \
      -XX:TieredStopAtLevel=1 -XX:+AutoCreateSharedArchive \
      -XX:SharedArchiveFile="$DIR/registry-$ECOS_REGISTRY_VERSION.jsa" -Xlog:cds=error -Xlog:cds+dynamic=error \
      -Djava.awt.headless=true \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$ECOS_REGISTRY_PORT" \
      -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$ECOS_REGISTRY_MANAGEMENT_PORT" \
      -Dquarkus.log.console.color=false \
      -Dquarkus.http.access-log.enabled=false \
      '-Dquarkus.log.category."io.apicurio.registry.logging.audit".level=WARN' \
      '-Dquarkus.log.category."io.quarkus.vertx.http.runtime.filters.accesslog".level=WARN' \
      -jar "$APP/quarkus-run.jar"
  )
  wait_healthy "$PID_FILE" "$APP/quarkus-run.jar" ready "$LOG_FILE"
  log "ready after $(elapsed_s "$started")s (pid $(cat "$PID_FILE"); log $LOG_FILE); Confluent API at $CCOMPAT_URL"
}

status() {
  local pid
  if ! pid="$(live_pid "$PID_FILE" "$APP/quarkus-run.jar")"; then
    log "stopped"
    return 3
  fi
  if ready >/dev/null 2>&1; then
    log "running (pid $pid), ready; Confluent API at $CCOMPAT_URL"
    return 0
  fi
  log "running (pid $pid) but $READY_URL does not say UP (log $LOG_FILE)"
  return 1
}

case "${1:-}" in
  provision) provision ;;
  start) start ;;
  stop) stop_process "Apicurio Registry" "$PID_FILE" "$APP/quarkus-run.jar" ;;
  status) status ;;
  restart)
    stop_process "Apicurio Registry" "$PID_FILE" "$APP/quarkus-run.jar"
    start
    ;;
  *) usage ;;
esac
