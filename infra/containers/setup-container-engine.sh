#!/usr/bin/env bash
# infra/containers/setup-container-engine.sh (`just containers` runs it; `.ci/run` runs it
# with --cleanup)
#
# Gives a Debian 12 machine that has no Docker engine and no container registry a
# Docker-compatible API for the Rust `testcontainers` crate (tests/redis.rs), using rootful
# podman, and builds the images the tests use locally, so that nothing is ever pulled.
# With a working Docker you need none of this. Notes on podman behind testcontainers (why
# tests publish ports on 127.0.0.1, etc.) are in infra/containers/README.md.
#
# Idempotent: safe to run before every test run (a second run takes about 1 s). Works from
# any directory (it uses no path relative to the caller or to the repository).
#
#   bash infra/containers/setup-container-engine.sh            # (as root) install + configure + start + build images
#   bash infra/containers/setup-container-engine.sh --stop     # stop the API service this script started
#   bash infra/containers/setup-container-engine.sh --rebuild  # force a rebuild of the local images
#   bash infra/containers/setup-container-engine.sh --cleanup  # also remove containers leaked by killed test runs
#   eval "$(bash infra/containers/setup-container-engine.sh --print-env)"   # set DOCKER_HOST in the caller's shell
#
# Env knobs: PODMAN_SOCK (default /run/podman/podman.sock), TC_ENGINE_STATE_DIR (default
# /run/tc-engine: pid file + service log), LINK_DOCKER_SOCK=1 (symlink /var/run/docker.sock
# to the podman socket if no docker.sock exists, so testcontainers needs no DOCKER_HOST),
# REDIS_TAGS (tags put on the local redis image, default "5.0 7.0 7 7.0.15 latest";
# 5.0 is what testcontainers-modules' Redis asks for).
set -euo pipefail

SOCK_PATH=${PODMAN_SOCK:-/run/podman/podman.sock}
STATE_DIR=${TC_ENGINE_STATE_DIR:-/run/tc-engine}
LINK_DOCKER_SOCK=${LINK_DOCKER_SOCK:-1}
REDIS_TAGS=${REDIS_TAGS:-"5.0 7.0 7 7.0.15 latest"}
BUSYBOX_TAGS=${BUSYBOX_TAGS:-"localhost/tc-busybox:1 docker.io/library/busybox:1.35 docker.io/library/busybox:latest"}
IMAGE_REV=3 # bump to force every machine to rebuild the images
CONF=/etc/containers/containers.conf
PIDFILE=$STATE_DIR/podman-service.pid
LOGFILE=$STATE_DIR/podman-service.log
export DOCKER_HOST_VALUE="unix://$SOCK_PATH"

log() { printf '[container-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ping_api() { curl -fsS --max-time 3 --unix-socket "$SOCK_PATH" http://d/_ping >/dev/null 2>&1; }

our_service_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'podman system service' || return 1
  echo "$pid"
}

stop_service() {
  local pid
  if pid=$(our_service_pid); then
    log "stopping podman API service (pid $pid)"
    kill "$pid"
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  --print-env) echo "export DOCKER_HOST=$DOCKER_HOST_VALUE"; exit 0 ;;
  --stop) stop_service; exit 0 ;;
  --rebuild) FORCE_REBUILD=1 ;;
  --cleanup) CLEANUP=1 ;;
  "") ;;
  *) die "unknown argument: $1" ;;
esac

FORCE_REBUILD=${FORCE_REBUILD:-0}
CLEANUP=${CLEANUP:-0}
[ "$(id -u)" = 0 ] || die "must run as root (rootful podman)"
T0=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - $1) / 1000000)); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

# ---------------------------------------------------------------------------
# 1. Packages (Debian's own; nothing is downloaded from anywhere else).
#    podman 4.3 + runc (crun 1.8 fails here: "cgroups in hybrid mode not supported"),
#    netavark/aardvark-dns/iptables for the bridge network and port forwarding,
#    busybox-static + redis-server only as the source of the files the images are made of.
# ---------------------------------------------------------------------------
PKGS=(podman runc netavark aardvark-dns iptables conmon catatonit busybox-static redis-server curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # never let a package's postinst start a service (a host redis on 6379, say)
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# ---------------------------------------------------------------------------
# 2. System-wide podman config, used by the CLI and by the API service alike.
#    - runtime runc, cgroupfs manager (no systemd here, cgroup v1/hybrid host)
#    - explicit default ulimits: without them podman asks for nofile/nproc = 1048576 and
#      runc's setrlimit fails with EPERM, because CAP_SYS_RESOURCE is not in our bounding
#      set. Values must not exceed the hard limits podman itself runs with; podman clamps
#      its own RLIMIT_NPROC to kernel.pid_max (32768 here), so use min(hard, pid_max).
# ---------------------------------------------------------------------------
hard_nofile=$(ulimit -Hn); [ "$hard_nofile" = unlimited ] && hard_nofile=1048576
((hard_nofile > 1048576)) && hard_nofile=1048576
hard_nproc=$(ulimit -Hu); [ "$hard_nproc" = unlimited ] && hard_nproc=4194304
pid_max=$(cat /proc/sys/kernel/pid_max)
((hard_nproc > pid_max)) && hard_nproc=$pid_max

conf_tmp=$(mktemp)
cat >"$conf_tmp" <<EOF
# Written by setup-container-engine.sh (rootful podman as a Docker API for testcontainers).
[containers]
default_ulimits = [
  "nofile=${hard_nofile}:${hard_nofile}",
  "nproc=${hard_nproc}:${hard_nproc}",
]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
conf_changed=0
if ! cmp -s "$conf_tmp" "$CONF"; then
  if [ -f "$CONF" ] && ! grep -q 'Written by setup-container-engine.sh' "$CONF"; then
    cp -a "$CONF" "$CONF.bak.$(date +%s)"
    log "backed up existing $CONF"
  fi
  install -m 0644 "$conf_tmp" "$CONF"
  conf_changed=1
  log "wrote $CONF (nofile=$hard_nofile nproc=$hard_nproc)"
fi
rm -f "$conf_tmp"

# ---------------------------------------------------------------------------
# 3. The Docker-compatible API service.
# ---------------------------------------------------------------------------
mkdir -p "$STATE_DIR" "$(dirname "$SOCK_PATH")"
if [ "$conf_changed" = 1 ] && our_service_pid >/dev/null; then
  stop_service # config is read at service start
fi
if ping_api; then
  [ "$conf_changed" = 1 ] && ! our_service_pid >/dev/null &&
    log "WARNING: an API service not started by this script is serving $SOCK_PATH; restart it to pick up $CONF"
else
  stop_service
  rm -f "$SOCK_PATH"
  log "starting podman API service on $DOCKER_HOST_VALUE (log: $LOGFILE)"
  # Fully detached: setsid -f forks, so no shell of ours stays behind waiting for it, and the
  # launcher closes every inherited fd above 2 and points 0-2 at /dev/null and the log.
  # Otherwise the service keeps the caller's pipes open and `setup | tail`, or a CI runner
  # reading the output of a job, waits for EOF for ever. The inner shell writes its own pid,
  # then execs podman, so the pid file names the service itself.
  rm -f "$PIDFILE"
  (
    cd / || exit 1
    exec setsid -f bash -c '
      for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
      done
      echo $$ >"$1"
      exec podman system service --time=0 "$2"' bash "$PIDFILE" "$DOCKER_HOST_VALUE"
  ) </dev/null >>"$LOGFILE" 2>&1
  for _ in $(seq 100); do ping_api && break; sleep 0.1; done
  ping_api || { tail -20 "$LOGFILE" >&2; die "podman API service did not come up"; }
fi

if [ "$LINK_DOCKER_SOCK" = 1 ] && [ ! -e /var/run/docker.sock ]; then
  ln -sfn "$SOCK_PATH" /var/run/docker.sock
  log "linked /var/run/docker.sock -> $SOCK_PATH"
fi

# testcontainers-rs has no reaper (Ryuk): a test process that is killed leaks its containers.
if [ "$CLEANUP" = 1 ]; then
  leaked=$(podman ps -aq --filter label=org.testcontainers.managed-by=testcontainers)
  if [ -n "$leaked" ]; then
    log "removing leaked testcontainers containers: $(echo $leaked)"
    podman rm -f -t 0 $leaked >/dev/null
  fi
fi

# ---------------------------------------------------------------------------
# 4. Local images, built from host files with `podman import` (no registry, no pull).
#    Tags must be fully qualified (docker.io/library/NAME:TAG): the Docker API normalises
#    "redis:5.0" to docker.io/library/redis:5.0, while `podman tag redis:5.0` would
#    create localhost/redis:5.0, which the Docker API would not find (-> 404 -> pull -> fail).
# ---------------------------------------------------------------------------
REDIS_BIN=$(readlink -f /usr/bin/redis-server) # Debian: redis-server -> redis-check-rdb
BUSYBOX_BIN=/bin/busybox
# any change to this script or to the source binaries rebuilds the images
fingerprint=$({ echo "rev=$IMAGE_REV"; sha256sum "${BASH_SOURCE[0]}" "$REDIS_BIN" /usr/bin/redis-cli "$BUSYBOX_BIN"; } | sha256sum | cut -c1-16)

image_fp() { podman image inspect --format '{{index .Config.Labels "tc-engine.fingerprint"}}' "$1" 2>/dev/null || true; }

# copy a dynamically linked binary and every library ldd lists into a rootfs
copy_with_libs() {
  local root=$1 src=$2 dest=$3 lib
  install -D -m 0755 "$src" "$root$dest"
  for lib in $(ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    # merged /usr: /lib/x86_64-linux-gnu/x.so -> usr/lib/x86_64-linux-gnu/x.so
    local rel=${lib#/}; rel=${rel#usr/}
    # keep the source's mode: the dynamic loader must stay executable (0644 -> EACCES on exec)
    [ -e "$root/usr/$rel" ] || install -D -m "$(stat -L -c %a "$lib")" "$lib" "$root/usr/$rel"
  done
}

new_busybox_rootfs() {
  local root=$1 a
  mkdir -p "$root"/{usr/bin,usr/lib,usr/lib64,etc,tmp,root,data,proc,sys,dev,run,var/tmp}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  ln -s usr/bin "$root/bin"; ln -s usr/bin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  ln -s bin "$root/usr/sbin"
  install -m 0755 "$BUSYBOX_BIN" "$root/usr/bin/busybox"
  for a in $("$BUSYBOX_BIN" --list); do [ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nredis:x:999:999:redis:/data:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nredis:x:999:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# import ROOTFS as FIRST_TAG with --change args, then add the other tags and drop the old image
import_and_tag() {
  local root=$1; shift
  local -a tags=() changes=()
  while [ "$1" != -- ]; do tags+=("$1"); shift; done; shift
  changes=("$@")
  local old_id new_id t
  old_id=$(podman image inspect --format '{{.Id}}' "${tags[0]}" 2>/dev/null || true)
  local -a chg=()
  for c in "${changes[@]}"; do chg+=(--change "$c"); done
  new_id=$(tar -C "$root" --numeric-owner -cf - . | podman import -q "${chg[@]}" - "${tags[0]}" | tail -1)
  new_id=${new_id#sha256:}
  for t in "${tags[@]:1}"; do podman tag "$new_id" "$t"; done
  [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] && podman rmi "$old_id" >/dev/null 2>&1 || true
  log "built ${tags[*]} (${new_id:0:12})"
}

read -r -a bb_tags <<<"$BUSYBOX_TAGS"
redis_tags=(); for t in $REDIS_TAGS; do redis_tags+=("docker.io/library/redis:$t"); done

need_build=$FORCE_REBUILD
for t in "${bb_tags[@]}" "${redis_tags[@]}"; do
  [ "$(image_fp "$t")" = "$fingerprint" ] || need_build=1
done

if [ "$need_build" = 1 ]; then
  tb=$(date +%s%N)
  work=$(mktemp -d /tmp/tc-engine-rootfs.XXXXXX)
  trap 'rm -rf "$work"' EXIT

  # busybox: a generic small image (sh, nc, wget, ip, httpd ...). NB Debian 12 busybox-static
  # `wget -T N` segfaults (also on the host); use `timeout N wget ...` or nc.
  new_busybox_rootfs "$work/busybox"
  import_and_tag "$work/busybox" "${bb_tags[@]}" -- \
    'CMD ["sh"]' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "LABEL tc-engine.fingerprint=$fingerprint"

  # redis: the host's Debian redis-server + its shared libraries, on the busybox rootfs.
  # The entrypoint mimics the official image, whose build turns protected mode off (with it
  # on, redis refuses clients that reach it through the port mapping, since they are not on
  # loopback inside the container).
  new_busybox_rootfs "$work/redis"
  rm -f "$work/redis/usr/bin/redis-server" "$work/redis/usr/bin/redis-cli"
  copy_with_libs "$work/redis" "$REDIS_BIN" /usr/bin/redis-server # must be named redis-server (argv[0] picks the mode)
  copy_with_libs "$work/redis" /usr/bin/redis-cli /usr/bin/redis-cli
  ln -s redis-server "$work/redis/usr/bin/redis-check-rdb"
  ln -s redis-server "$work/redis/usr/bin/redis-check-aof"
  mkdir -p "$work/redis/usr/local/bin"
  cat >"$work/redis/usr/local/bin/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
set -e
# like the official image: `docker run redis --flag` means `redis-server --flag`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  if [ $# -gt 0 ] && { [ "${1%.conf}" != "$1" ] || [ "$1" = - ]; }; then
    conf=$1; shift; set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
fi
exec "$@"
EOS
  chmod 0755 "$work/redis/usr/local/bin/docker-entrypoint.sh"
  redis_version=$("$REDIS_BIN" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
  import_and_tag "$work/redis" "${redis_tags[@]}" -- \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' 'CMD ["redis-server"]' \
    'EXPOSE 6379/tcp' 'WORKDIR /data' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "ENV REDIS_VERSION=$redis_version" \
    "LABEL tc-engine.fingerprint=$fingerprint"
  rm -rf "$work"; trap - EXIT
  # earlier builds of ours that lost all their tags (ones still used by a container stay)
  for id in $(podman images -q --filter dangling=true --filter label=tc-engine.fingerprint); do
    podman rmi "$id" >/dev/null 2>&1 || true
  done
  log "images built in $(elapsed "$tb") s"
fi

# ---------------------------------------------------------------------------
# 5. Smoke test through the Docker API itself: create/start/wait/logs/remove.
# ---------------------------------------------------------------------------
api() { curl -fsS --max-time 30 --unix-socket "$SOCK_PATH" -H 'Content-Type: application/json' "$@"; }
cid=$(api -X POST -d '{"Image":"redis:5.0","Entrypoint":["redis-server"],"Cmd":["--version"],"HostConfig":{"PublishAllPorts":true}}' \
  http://d/v1.41/containers/create | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
[ -n "$cid" ] || die "Docker API could not create a container from redis:5.0"
api -X POST "http://d/v1.41/containers/$cid/start" >/dev/null || { api -X DELETE "http://d/v1.41/containers/$cid?force=true" >/dev/null || true; die "container did not start (see $LOGFILE)"; }
api -X POST "http://d/v1.41/containers/$cid/wait" >/dev/null || true
out=$(api "http://d/v1.41/containers/$cid/logs?stdout=true&stderr=true" | tr -cd '[:print:]\n' || true)
api -X DELETE "http://d/v1.41/containers/$cid?force=true" >/dev/null || true
grep -q 'Redis server v=' <<<"$out" || die "smoke test failed, container said: $out"

log "ready in $(elapsed "$T0") s; Docker API at $DOCKER_HOST_VALUE"
echo "export DOCKER_HOST=$DOCKER_HOST_VALUE"
