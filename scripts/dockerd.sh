#!/usr/bin/env bash
# A private Docker daemon for the lab, for machines where the engine is
# installed but no daemon runs (and no image registry is reachable).
#
#   scripts/dockerd.sh start    start it (idempotent), print `export DOCKER_HOST=...`
#   scripts/dockerd.sh stop     stop it and remove its pidfile and socket
#   scripts/dockerd.sh status   exit 0 and print DOCKER_HOST when it answers
#
# Everything lives under $LAB_DOCKERD_DIR (default /tmp/lab-docker). Flags
# (see docs/DOCKER.md): vfs storage (works on any filesystem, no overlay
# mounts), no iptables / masquerading and no default bridge. User-defined
# bridge networks and `-p 127.0.0.1:HOST:PORT` publishing still work: with
# --iptables=false Docker publishes through its userland proxy.
# Installs Debian's docker.io when dockerd is missing (needs root).
set -euo pipefail

DIR="${LAB_DOCKERD_DIR:-/tmp/lab-docker}"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
DATA="$DIR/data"
EXEC="$DIR/exec"
HOST="unix://$SOCK"
START_TIMEOUT="${LAB_DOCKERD_START_TIMEOUT:-60}"

docker_cli() {
  if command -v docker >/dev/null 2>&1; then command -v docker; else echo /usr/bin/docker; fi
}

answers() {
  [ -S "$SOCK" ] && DOCKER_HOST="$HOST" timeout 5 "$(docker_cli)" info >/dev/null 2>&1
}

running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_engine() {
  if command -v dockerd >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "dockerd is not installed; as root run: apt-get update && apt-get install -y docker.io" >&2
    exit 1
  fi
  echo "dockerd missing: installing Debian's docker.io" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2
}

start() {
  if answers; then
    echo "export DOCKER_HOST=$HOST"
    return 0
  fi
  ensure_engine
  if [ "$(id -u)" != 0 ]; then
    echo "starting a private dockerd needs root" >&2
    exit 1
  fi
  local old
  if old="$(running_pid)"; then
    echo "dockerd (pid $old) is running but does not answer; waiting for it" >&2
  else
    mkdir -p "$DATA" "$EXEC"
    rm -f "$PIDFILE" "$SOCK"
    # setsid: the daemon must not die with the shell that started it.
    setsid dockerd \
      --storage-driver=vfs \
      --iptables=false --ip-masq=false --bridge=none \
      --data-root "$DATA" --exec-root "$EXEC" \
      --pidfile "$PIDFILE" --host "$HOST" \
      >"$LOG" 2>&1 </dev/null &
  fi
  local waited=0
  until answers; do
    if [ "$waited" -ge "$((START_TIMEOUT * 5))" ]; then
      echo "dockerd did not answer within ${START_TIMEOUT}s; last log lines ($LOG):" >&2
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "export DOCKER_HOST=$HOST"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge 150 ]; then
        echo "dockerd (pid $pid) ignores SIGTERM after 30s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
      waited=$((waited + 1))
    done
    echo "dockerd (pid $pid) stopped"
  else
    echo "dockerd not running (no live pid in $PIDFILE)"
  fi
  rm -f "$PIDFILE" "$SOCK"
}

status() {
  if answers; then
    echo "running: export DOCKER_HOST=$HOST (pid $(running_pid || echo '?'))"
    return 0
  fi
  echo "not running ($HOST)"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status   (dir: \$LAB_DOCKERD_DIR, default /tmp/lab-docker)" >&2; exit 2 ;;
esac
