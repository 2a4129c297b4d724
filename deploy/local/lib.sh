# shellcheck shell=bash
# Shared helpers for the deploy/local service scripts. Sourced, never run.
#
# Every setting is an environment variable with a default; docs/local-infrastructure.md lists them.
# Each service keeps everything (artifacts, data, logs, pid file, generated config) under
# "$ECOS_LOCAL_DIR/<service>/", so removing that folder resets the service.

ECOS_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ECOS_LOCAL_DIR="${ECOS_LOCAL_DIR:-$ECOS_REPO_DIR/.local}"
ECOS_KAFKA_PORT="${ECOS_KAFKA_PORT:-19092}"
if [[ "$ECOS_KAFKA_PORT" =~ ^[0-9]+$ ]]; then
  ECOS_KAFKA_CONTROLLER_PORT="${ECOS_KAFKA_CONTROLLER_PORT:-$((ECOS_KAFKA_PORT + 1))}"
fi
ECOS_REGISTRY_PORT="${ECOS_REGISTRY_PORT:-18081}"
ECOS_CLICKHOUSE_HTTP_PORT="${ECOS_CLICKHOUSE_HTTP_PORT:-18123}"
ECOS_CLICKHOUSE_TCP_PORT="${ECOS_CLICKHOUSE_TCP_PORT:-19000}"
ECOS_START_TIMEOUT="${ECOS_START_TIMEOUT:-180}"
ECOS_STOP_TIMEOUT="${ECOS_STOP_TIMEOUT:-30}"

# The service a script manages; set by each script before it sources this file.
ECOS_SERVICE="${ECOS_SERVICE:-local}"

log() { printf '[%s] %s\n' "$ECOS_SERVICE" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$ECOS_SERVICE" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$ECOS_SERVICE" "$*" >&2
  exit 1
}

# Milliseconds since the epoch, for the "started in N s" lines.
now_ms() { date +%s%3N; }
elapsed_s() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

check_port_number() {
  local name="$1" value="$2"
  if [[ ! "$value" =~ ^[1-9][0-9]{0,4}$ ]] || ((value > 65535)); then
    die "$name=$value is not a TCP port number"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the pid recorded in pid file $1 when that process is alive and its command line contains
# $2 (so a pid reused by an unrelated process after a crash is not taken for ours); else fails.
# A stale pid file is removed.
live_pid() {
  local pid_file="$1" marker="$2" pid
  [[ -f "$pid_file" ]] || return 1
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$pid_file"
  return 1
}

# Starts "$@" in the background in its own session, detached from the terminal, appending its
# output to log file $2, and records its pid in $1.
spawn() {
  local pid_file="$1" log_file="$2"
  shift 2
  mkdir -p "$(dirname "$log_file")"
  printf '\n===== %s start: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log_file"
  setsid nohup "$@" </dev/null >>"$log_file" 2>&1 &
  printf '%s\n' "$!" >"$pid_file"
}

# Keeps the previous run's log files as <file>.1, so that a failed start shows only its own lines.
rotate_logs() {
  local f
  for f in "$@"; do
    if [[ -f "$f" ]]; then mv -f "$f" "$f.1"; fi
  done
}

# Prints the last lines of each given log file, for a failed start.
show_logs() {
  local f
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf '[%s] ---- last lines of %s ----\n' "$ECOS_SERVICE" "$f" >&2
    tail -n 40 "$f" >&2
    printf '[%s] ---- end of %s ----\n' "$ECOS_SERVICE" "$f" >&2
  done
}

# wait_healthy PID_FILE MARKER CHECK_FUNCTION LOG_FILE...
# Polls CHECK_FUNCTION until it succeeds, the process dies, or ECOS_START_TIMEOUT seconds pass.
wait_healthy() {
  local pid_file="$1" marker="$2" check="$3"
  shift 3
  local deadline=$((SECONDS + ECOS_START_TIMEOUT))
  while true; do
    if "$check" >/dev/null 2>&1; then
      return 0
    fi
    if ! live_pid "$pid_file" "$marker" >/dev/null; then
      show_logs "$@"
      die "the process exited while starting; see the log lines above (full logs: $*)"
    fi
    if ((SECONDS >= deadline)); then
      show_logs "$@"
      die "not healthy after ${ECOS_START_TIMEOUT}s (raise ECOS_START_TIMEOUT on a slow machine); it is still running, stop it with: $0 stop"
    fi
    sleep 0.5
  done
}

# stop_process NAME PID_FILE MARKER: SIGTERM, then SIGKILL after ECOS_STOP_TIMEOUT seconds.
stop_process() {
  local name="$1" pid_file="$2" marker="$3" pid
  if ! pid="$(live_pid "$pid_file" "$marker")"; then
    log "$name is not running"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + ECOS_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      warn "$name did not stop within ${ECOS_STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  log "$name stopped"
}

# Fails with a clear message when a port we are about to listen on is taken by something else.
require_free_port() {
  local name="$1" port="$2"
  if port_open "$port"; then
    die "port $port ($name) is already in use by another process; free it or choose another port with $name=<port>"
  fi
}

# Prints the home of the first JDK under /usr/lib/jvm whose major version is at least $1.
find_jdk() {
  local min="$1" home ver
  for home in /usr/lib/jvm/temurin-*-jdk-* /usr/lib/jvm/*; do
    [[ -x "$home/bin/java" ]] || continue
    ver="$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
    if [[ -n "$ver" ]] && ((ver >= min)); then
      printf '%s\n' "$home"
      return 0
    fi
  done
  return 1
}

require_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"
}

usage() {
  printf 'usage: %s {provision|start|stop|status|restart}\n' "$0" >&2
  exit 2
}
