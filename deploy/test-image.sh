#!/bin/sh
# Build and check the mailhub container image with podman, with no image registry reachable.
#
#   sh deploy/test-image.sh          (as root, from anywhere; takes a few minutes)
#
# 1. Base image from Debian packages: debootstrap a minimal bookworm with python3 and
#    python3-venv from the mirror apt is already configured with, then `podman import` it
#    (cached as localhost/mailhub-base:bookworm; MAILHUB_REBUILD_BASE=1 rebuilds it).
# 2. Build deploy/Dockerfile on it with `--format docker` (the OCI format drops HEALTHCHECK),
#    the host's CA bundle mounted read-only into the build steps so pip can verify TLS behind
#    an intercepting proxy.
# 3. Run it as a user would: one named volume on /data, standard ports inside, the sysctl that
#    lets the non-root user bind them, a TLS certificate mounted read-only, MAILHUB_* variables.
# 4. From the host: IMAP (greeting, CAPABILITY, STARTTLS, LOGIN, SELECT), IMAPS, POP3 (STLS,
#    login, STAT/RETR), LMTP delivery seen by both; `podman healthcheck run`; SIGTERM (podman
#    stop) ends the server cleanly with status 0 and "stopped" in the log.
# 5. With MAILHUB_TEST_POSTFIX=1: Postfix (deploy/postfix/Dockerfile) in front of mailhub as
#    in docker-compose.postfix.yml: SMTP to Postfix, LMTP to mailhub, unknown users refused.
#
# Known adjustments for this host (see the Ship-it issue): runc as the runtime (crun refuses
# the host's cgroup layout), explicit ulimits at or below the host's hard limits, and the
# health check run explicitly (no systemd timers here).
set -eu
cd "$(dirname "$0")/.."

START=$(date +%s)
WORK=${MAILHUB_IMAGE_WORK:-/var/tmp/mailhub-image-test}
BASE_TAG=localhost/mailhub-base:bookworm
IMAGE=localhost/mailhub:test
NAME=mailhub-image-test
VOLUME=mailhub-image-test-data
RUNTIME=${MAILHUB_PODMAN_RUNTIME:-runc}
PODMAN="podman --runtime $RUNTIME"
PY=${PYTHON:-python3}

say() { printf 'test-image: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

for tool in podman debootstrap "$RUNTIME" openssl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (apt-get install podman runc debootstrap)"
done
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap and rootful podman)"

# Ulimits: the host's hard limits are the ceiling (podman's defaults may exceed them).
hard_limit() {  # $1 = RLIMIT name, $2 = ceiling; POSIX sh has no `ulimit -Hu`
    "$PY" -c 'import resource, sys
hard = resource.getrlimit(getattr(resource, sys.argv[1]))[1]
ceiling = int(sys.argv[2])
print(ceiling if hard == resource.RLIM_INFINITY or hard > ceiling else hard)' "$1" "$2"
}
NOFILE=$(hard_limit RLIMIT_NOFILE 65536)
NPROC=$(hard_limit RLIMIT_NPROC 4096)
ULIMITS="--ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=$NPROC:$NPROC"

mirror() {
    # The first Debian (not security) URI of apt's sources, deb822 or one-line format.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
        /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

cleanup() {
    $PODMAN rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK"

# ---- 1. base image --------------------------------------------------------------------------
if [ "${MAILHUB_REBUILD_BASE:-0}" != 0 ] || ! podman image exists "$BASE_TAG"; then
    MIRROR=$(mirror)
    say "debootstrap bookworm from $MIRROR"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,openssl,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
    rm -rf "$WORK/rootfs"
fi
say "base image $BASE_TAG ready ($(( $(date +%s) - START ))s)"

# ---- 2. build -------------------------------------------------------------------------------
CA_MOUNT=""
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    CA_MOUNT="--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"
fi
# shellcheck disable=SC2086
$PODMAN build --format docker --build-arg BASE="$BASE_TAG" $CA_MOUNT $ULIMITS \
    -f deploy/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; fail "podman build (log: $WORK/build.log)"; }
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q health \
    || fail "the image has no HEALTHCHECK (built without --format docker?)"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "mailhub:mailhub" ] \
    || fail "the image does not run as the mailhub user"
say "image $IMAGE built ($(( $(date +%s) - START ))s)"

# ---- 3. run ---------------------------------------------------------------------------------
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mail.test" \
    -keyout "$TLS/privkey.pem" -out "$TLS/fullchain.pem" >/dev/null 2>&1
chmod 0644 "$TLS/privkey.pem" "$TLS/fullchain.pem"  # read by the container's uid 1000

PORTS=$("$PY" -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
set -- $PORTS
P_IMAP=$1 P_IMAPS=$2 P_POP3=$3 P_LMTP=$4 P_POP3S=$5

# Configuration both ways: a mounted file (MAILHUB_CONFIG) and MAILHUB_* variables on top.
cat >"$WORK/custom.toml" <<'TOML'
data_dir = "/data"
host = "0.0.0.0"
hostname = "mail.test"
[imap]
port = 143
tls_port = 993
[pop3]
port = 110
tls_port = 995
[lmtp]
port = 24
[smtp]
port = 25
TOML
chmod 0644 "$WORK/custom.toml"

podman volume create "$VOLUME" >/dev/null
# shellcheck disable=SC2086
$PODMAN run -d --name "$NAME" $ULIMITS \
    --sysctl net.ipv4.ip_unprivileged_port_start=0 \
    -v "$VOLUME:/data" -v "$TLS:/etc/mailhub/tls:ro" \
    -v "$WORK/custom.toml:/etc/mailhub/custom.toml:ro" \
    -e MAILHUB_CONFIG=/etc/mailhub/custom.toml \
    -e MAILHUB_TLS__CERT_FILE=/etc/mailhub/tls/fullchain.pem \
    -e MAILHUB_TLS__KEY_FILE=/etc/mailhub/tls/privkey.pem \
    -e MAILHUB_HEALTH__USER=health@mail.test \
    -e MAILHUB_HEALTH__PASSWORD_FILE=/data/health-password \
    -p "127.0.0.1:$P_IMAP:143" -p "127.0.0.1:$P_IMAPS:993" -p "127.0.0.1:$P_POP3:110" \
    -p "127.0.0.1:$P_POP3S:995" -p "127.0.0.1:$P_LMTP:24" \
    "$IMAGE" >/dev/null || fail "podman run"

ready=""
for _ in $(seq 1 60); do
    if $PODMAN logs "$NAME" 2>&1 | grep -q "mailhub .* ready"; then ready=1; break; fi
    [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = true ] || break
    sleep 0.5
done
[ -n "$ready" ] || { $PODMAN logs "$NAME" >&2 || true; fail "the server did not start"; }
for label in imap imaps pop3 pop3s lmtp smtp; do
    $PODMAN logs "$NAME" 2>&1 | grep -q "$label listening on 0.0.0.0:" \
        || { $PODMAN logs "$NAME" >&2; fail "no $label listener in the log"; }
done
[ "$(podman exec "$NAME" id -u)" != 0 ] || fail "the server runs as root"
say "container running as $(podman exec "$NAME" id -un) ($(( $(date +%s) - START ))s)"

printf 'alice-Secret-42\n' | podman exec -i "$NAME" mailhub user add alice@mail.test --password-stdin >/dev/null
printf 'health-Secret-7\n' | podman exec -i "$NAME" mailhub user add health@mail.test --password-stdin >/dev/null
podman exec "$NAME" sh -c 'umask 077 && printf "health-Secret-7\n" > /data/health-password'

# ---- 4. protocols from the host -------------------------------------------------------------
"$PY" - "$P_IMAP" "$P_IMAPS" "$P_POP3" "$P_POP3S" "$P_LMTP" <<'EOF' || fail "protocol checks"
import imaplib, poplib, smtplib, ssl, sys
p_imap, p_imaps, p_pop3, p_pop3s, p_lmtp = map(int, sys.argv[1:])
H, USER, PW = "127.0.0.1", "alice@mail.test", "alice-Secret-42"
tls = ssl.create_default_context(); tls.check_hostname = False; tls.verify_mode = ssl.CERT_NONE

lmtp = smtplib.LMTP(H, p_lmtp)
lmtp.ehlo("host.test")
msg = b"From: bob@example.org\r\nTo: alice@mail.test\r\nSubject: image test\r\n\r\nhello from the host\r\n"
refused = lmtp.sendmail("bob@example.org", ["alice@mail.test"], msg)
assert not refused, refused
lmtp.quit()
print("lmtp: delivered")

imap = imaplib.IMAP4(H, p_imap)
assert imap.welcome.startswith(b"* OK"), imap.welcome
assert b"mail.test" in imap.welcome, imap.welcome  # hostname from the mounted config file
typ, caps = imap.capability()
assert typ == "OK" and b"IMAP4rev1" in caps[0], caps
assert b"STARTTLS" in caps[0], caps
imap.starttls(tls)
imap.login(USER, PW)
typ, data = imap.select("INBOX")
assert typ == "OK" and int(data[0]) == 1, data
typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"image test" in data[0][1], data
imap.logout()
print("imap: greeting, CAPABILITY, STARTTLS, LOGIN, SELECT, FETCH ok")

imaps = imaplib.IMAP4_SSL(H, p_imaps, ssl_context=tls)
imaps.login(USER, PW)
imaps.logout()
print("imaps: login ok")

pop = poplib.POP3(H, p_pop3)
assert pop.getwelcome().startswith(b"+OK")
pop.stls(tls)
pop.user(USER); pop.pass_(PW)
count, _size = pop.stat()
assert count == 1, count
lines = pop.retr(1)[1]
assert b"hello from the host" in lines, lines
pop.quit()
pops = poplib.POP3_SSL(H, p_pop3s, context=tls)
pops.user(USER); pops.pass_(PW); pops.quit()
print("pop3: STLS, login, STAT, RETR ok; pop3s login ok")
EOF

# ---- 5. health check ------------------------------------------------------------------------
$PODMAN healthcheck run "$NAME" || { $PODMAN exec "$NAME" mailhub health || true; fail "podman healthcheck run"; }
say "healthcheck: $($PODMAN exec "$NAME" mailhub health)"
$PODMAN exec "$NAME" mailhub doctor >"$WORK/doctor.log" 2>&1 || { cat "$WORK/doctor.log" >&2; say "note: doctor reported faults (above)"; }

# ---- 6. clean stop on SIGTERM ---------------------------------------------------------------
$PODMAN stop -t 30 "$NAME" >/dev/null
status=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
$PODMAN logs "$NAME" >"$WORK/container.log" 2>&1
[ "$status" = 0 ] || { tail -20 "$WORK/container.log" >&2; fail "exit status $status after SIGTERM"; }
grep -q "stopped" "$WORK/container.log" || fail "no 'stopped' line after SIGTERM"
if grep -q "Traceback" "$WORK/container.log"; then cat "$WORK/container.log" >&2; fail "traceback in the log"; fi
say "SIGTERM: clean stop (status 0)"
$PODMAN rm -f -t 0 "$NAME" >/dev/null 2>&1 || true

# ---- 7. optional: Postfix in front, handing mail over LMTP (docker-compose.postfix.yml) ------
if [ "${MAILHUB_TEST_POSTFIX:-0}" != 0 ]; then
    PF_IMAGE=localhost/mailhub-postfix:test
    # shellcheck disable=SC2086
    $PODMAN build --format docker --build-arg BASE="$BASE_TAG" $ULIMITS \
        -f deploy/postfix/Dockerfile -t "$PF_IMAGE" . >"$WORK/postfix-build.log" 2>&1 \
        || { tail -30 "$WORK/postfix-build.log" >&2; fail "postfix image build"; }
    # shellcheck disable=SC2086
    $PODMAN run -d --name "$NAME" $ULIMITS --sysctl net.ipv4.ip_unprivileged_port_start=0 \
        -v "$VOLUME:/data" -e MAILHUB_SMTP__PORT=0 "$IMAGE" >/dev/null || fail "podman run (hub)"
    for _ in $(seq 1 60); do
        $PODMAN logs "$NAME" 2>&1 | grep -q "mailhub .* ready" && break
        sleep 0.5
    done
    HUB_IP=$(podman inspect --format '{{.NetworkSettings.IPAddress}}' "$NAME")
    [ -n "$HUB_IP" ] || fail "no address for the mailhub container"
    P_SMTP=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    trap '$PODMAN rm -f -t 0 "$NAME-postfix" >/dev/null 2>&1 || true; cleanup' EXIT
    # shellcheck disable=SC2086
    $PODMAN run -d --name "$NAME-postfix" $ULIMITS -e MAIL_DOMAINS=mail.test \
        -e MAILHUB_LMTP="lmtp:inet:$HUB_IP:24" -p "127.0.0.1:$P_SMTP:25" "$PF_IMAGE" >/dev/null \
        || fail "podman run (postfix)"
    "$PY" - "$P_SMTP" <<'EOF' || { $PODMAN logs "$NAME-postfix" >&2; fail "SMTP to Postfix"; }
import smtplib, sys, time
port = int(sys.argv[1])
for _ in range(60):
    try:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit("postfix does not answer")
smtp.ehlo("host.test")
msg = b"From: bob@example.org\r\nTo: alice@mail.test\r\nSubject: via postfix\r\n\r\nhi\r\n"
refused = smtp.sendmail("bob@example.org", ["alice@mail.test"], msg)
assert not refused, refused
try:
    smtp.sendmail("bob@example.org", ["nobody@mail.test"], msg)
except smtplib.SMTPRecipientsRefused as exc:
    code = exc.recipients["nobody@mail.test"][0]
    assert code in (450, 550), exc.recipients  # verified against mailhub's LMTP RCPT
else:
    raise AssertionError("postfix accepted an address mailhub does not know")
smtp.quit()
print("postfix: accepted alice, refused nobody")
EOF
    delivered=""
    for _ in $(seq 1 60); do
        if podman exec "$NAME" /opt/mailhub/bin/python -c '
import poplib
p = poplib.POP3("127.0.0.1", 110); p.user("alice@mail.test"); p.pass_("alice-Secret-42")
msgs = [b"\n".join(p.retr(i + 1)[1]) for i in range(p.stat()[0])]; p.quit()
raise SystemExit(0 if any(b"via postfix" in m for m in msgs) else 1)' 2>/dev/null; then
            delivered=1; break
        fi
        sleep 0.5
    done
    [ -n "$delivered" ] || { $PODMAN logs "$NAME-postfix" >&2; fail "mail via Postfix did not arrive"; }
    say "postfix -> LMTP -> mailhub: delivered ($(( $(date +%s) - START ))s)"
    $PODMAN stop -t 30 "$NAME" "$NAME-postfix" >/dev/null
fi

say "PASS in $(( $(date +%s) - START ))s"
