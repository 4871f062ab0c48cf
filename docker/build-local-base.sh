#!/bin/sh
# Build a local `debian:bookworm-slim` image from a Debian mirror, for machines that reach
# a Debian mirror but not Docker Hub (docker/Dockerfile's stages are FROM debian:bookworm-slim).
# Run by hand, as root; `make test` never runs it.
#
#   sudo docker/build-local-base.sh                   # needs a running Docker daemon
#   sudo docker/build-local-base.sh --start-dockerd   # installs docker.io, starts dockerd first
#
# Then:  docker build --network host -f docker/Dockerfile -t modeld:0.1.0 .
#
# --start-dockerd installs Debian's docker.io (and debootstrap) if missing and starts
# `dockerd --iptables=false --ip6tables=false` in the background (no systemd needed;
# overlay2 storage, cgroupfs; the host's firewall rules are left alone). Its default bridge
# then has no NAT: published ports (`docker run -p 127.0.0.1:8080:8080`, through
# docker-proxy) work, but a container cannot reach the mirror, so builds need
# `docker build --network host`. It prints the daemon's pid; stop it with `kill <pid>`.
#
# The image: `debootstrap --variant=minbase bookworm` from the mirror apt uses on this host
# (MIRROR=... overrides), slimmed like the official -slim images (no docs, man pages,
# locales; apt keeps no package cache and no list files), apt sources for bookworm,
# bookworm-updates and bookworm-security on the same mirror host, imported with
# `docker import` as debian:bookworm-slim (TAG=... overrides). About 75 MB.
set -eu

TAG=${TAG:-debian:bookworm-slim}
SUITE=bookworm

if [ "$(id -u)" != 0 ]; then
  echo "$0: run as root (debootstrap, dockerd)" >&2; exit 1
fi

need() { command -v "$1" >/dev/null 2>&1; }

if [ "${1:-}" = --start-dockerd ]; then
  if ! need dockerd || ! need debootstrap; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io debootstrap
  fi
  if ! docker info >/dev/null 2>&1; then
    mkdir -p /var/log
    setsid dockerd --iptables=false --ip6tables=false >/var/log/dockerd-local.log 2>&1 &
    pid=$!
    i=0
    until docker info >/dev/null 2>&1; do
      i=$((i + 1))
      if [ $i -gt 60 ] || ! kill -0 $pid 2>/dev/null; then
        echo "$0: dockerd did not start; see /var/log/dockerd-local.log" >&2; tail -20 /var/log/dockerd-local.log >&2; exit 1
      fi
      sleep 1
    done
    echo "dockerd running, pid $pid (log /var/log/dockerd-local.log; stop with: kill $pid)"
  fi
fi

need debootstrap || { echo "$0: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }
docker info >/dev/null 2>&1 || {
  echo "$0: no Docker daemon (docker info fails); start one or pass --start-dockerd" >&2; exit 1; }

# The mirror apt uses here: the first deb URI of the host's sources.
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')
  [ -n "$MIRROR" ] || MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                               awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}')
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
SECURITY=${SECURITY:-$(echo "$MIRROR" | sed 's#/debian/*$#/debian-security#')}
echo "mirror $MIRROR, security $SECURITY, tag $TAG"

ROOT=$(mktemp -d /tmp/modeld-base.XXXXXX)
cleanup() {
  # debootstrap mounts proc and sys in the target; never delete through a mount
  awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"

# Slim it the way the official -slim variant does (debuerreotype-slimify) and keep apt lean.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' \
  >"$ROOT/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$ROOT/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT/usr/share/man/"* "$ROOT/usr/share/groff/"* "$ROOT/usr/share/info/"* \
       "$ROOT/usr/share/lintian/"* "$ROOT/usr/share/linda/"*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Nothing of this host in the image: docker provides resolv.conf, hosts and hostname.
rm -rf "$ROOT/var/lib/apt/lists/"* "$ROOT/var/cache/apt/"*.bin "$ROOT/var/cache/apt/archives/"*.deb \
       "$ROOT/var/cache/debconf/"*-old "$ROOT/var/log/"* "$ROOT/tmp/"* "$ROOT/root/.bash_history"
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"
: >"$ROOT/etc/machine-id"

tar --numeric-owner --xattrs -C "$ROOT" -c . |
  docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $SUITE $MIRROR (docker/build-local-base.sh)" - "$TAG"
docker image ls "$TAG"
