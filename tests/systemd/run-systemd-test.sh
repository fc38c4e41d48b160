#!/usr/bin/env bash
# bitmixd under a real systemd as PID 1 (DESIGN.md, "Facts about the development machine").
#
#   run-systemd-test.sh BUILD_DIR
#
# Boots /lib/systemd/systemd --system in a new PID + mount namespace, chrooted into an overlay
# over a cached Debian 12 rootfs (make-rootfs.sh) into which BUILD_DIR is `meson install`ed,
# and checks: socket activation on the first client, READY before active, `systemctl reload`
# with a broken drop-in (fails, file:line:column in the journal, old config still served) and
# a good one (applied), the watchdog restarting a hung loop (BITMIXD_TEST_HOOKS=1, set only by
# this test's drop-in), a restart serving models from systemd's fd store with the model file
# gone, and `systemd-analyze verify` clean. Prints the `systemd-analyze security` score.
# Everything dies with the namespace's PID 1, which the EXIT trap kills whatever happened.
# Exit 77 (skip) only when the machine cannot boot systemd so: not root, no cgroup2.
set -euo pipefail

build=$(realpath "${1:?usage: run-systemd-test.sh BUILD_DIR}")
here=$(dirname "$(realpath "$0")")
t_start=$(date +%s.%N)

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${pid1:-}" ]; then
		echo "--- journal of bitmixd.service ---" >&2
		in_ns journalctl --no-pager -n 80 -u bitmixd.service -u bitmixd.socket >&2 || true
	fi
	exit 1
}
step() { printf '[%6.1fs] %s\n' "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$*"; }

[ "$(id -u)" = 0 ] || skip "booting systemd in a namespace needs root"
for tool in unshare nsenter chroot mount; do
	command -v "$tool" >/dev/null || skip "$tool is missing"
done
grep -qw cgroup2 /proc/filesystems || skip "the kernel has no cgroup2"

rootfs=$("$here/make-rootfs.sh")
step "rootfs: $rootfs"

work=$(mktemp -d /var/tmp/bitmix-systemd.XXXXXX)
mkdir -p "$work/layers" "$work/root"
pid1=
cg_mounted=
cgdir=
cleanup() {
	if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
		kill -KILL "$pid1" 2>/dev/null || true
	fi
	[ -n "${unshare_pid:-}" ] && wait "$unshare_pid" 2>/dev/null || true
	# The namespace's cgroups empty as its processes die; remove them leaves first.
	for _ in $(seq 50); do
		[ -n "$cgdir" ] && [ -d "$cgdir" ] || break
		find "$cgdir" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
	done
	[ -n "$cg_mounted" ] && umount "$cg_mounted"
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 1' TERM INT HUP

# A cgroup of its own, made the root of a cgroup namespace: systemd then manages its slices
# under it, never the host's cgroup root (nor another test's systemd).
cg_root=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") break }
	      $(i + 1) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
if [ -z "$cg_root" ]; then
	mkdir "$work/cgroup"
	mount -t cgroup2 cgroup2 "$work/cgroup" || skip "cannot mount cgroup2"
	cg_root=$work/cgroup cg_mounted=$work/cgroup
fi
cg_self=$cg_root$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
cgdir=$cg_root/bitmix-systemd-test.$$
enter_cgroup="echo \$\$ > $cgdir/cgroup.procs &&"
cgroupns=--cgroup
if ! mkdir "$cgdir" 2>/dev/null; then
	echo "note: cannot create $cgdir: systemd runs without a cgroup namespace of its own"
	cgdir= enter_cgroup= cgroupns=
fi

# Stage 1 runs inside the new namespaces as PID 1 and becomes systemd: the overlay (the cache
# stays pristine), the build installed into it, the test's drop-in, the API file systems.
cat >"$work/stage1.sh" <<EOF
set -e
root=$work/root
# An overlay with its upper layer in a tmpfs keeps the cache pristine whatever file system
# /var/tmp is on; where overlayfs still cannot stack, a copy.
mount -t tmpfs -o mode=755 layers $work/layers
mkdir $work/layers/upper $work/layers/work
mount -t overlay overlay -o lowerdir=$rootfs,upperdir=$work/layers/upper,workdir=$work/layers/work \$root ||
	cp -a $rootfs/. \$root/
meson install -C $build --no-rebuild --quiet --destdir \$root >$work/install.log 2>&1
chroot \$root ldconfig
chroot \$root systemctl enable bitmixd.socket
mkdir -p \$root/etc/systemd/system/bitmixd.service.d
# No udev and no terminals here: a getty would wait for its tty device for ever.
ln -sf /dev/null \$root/etc/systemd/system/getty.target
ln -sf /dev/null \$root/etc/systemd/system/serial-getty@.service
cat >\$root/etc/systemd/system/bitmixd.service.d/50-test.conf <<'UNIT'
# Only this test sets BITMIXD_TEST_HOOKS (daemon/test_hooks.c). No leak check at exit: LSan
# needs ptrace, which the unit's system call filter refuses. The test restarts more often
# than systemd's default start limit (5 in 10 s) allows.
[Unit]
StartLimitIntervalSec=0
[Service]
Environment=BITMIXD_TEST_HOOKS=1 ASAN_OPTIONS=detect_leaks=0
WatchdogSec=3s
UNIT
mount -t proc proc \$root/proc
mount -t sysfs sysfs \$root/sys
mount -t tmpfs -o mode=755 tmpfs \$root/run
mount -t tmpfs -o mode=1777 tmpfs \$root/tmp
mount -t cgroup2 cgroup2 \$root/sys/fs/cgroup
# Until the outer unshare process has left this namespace's root cgroup (no processes there
# but ours, so systemd may enable controllers below it).
while [ ! -e $work/go ]; do sleep 0.05; done
exec chroot \$root /lib/systemd/systemd --system --show-status=no
EOF
sh -c "$enter_cgroup exec unshare $cgroupns --pid --fork --kill-child=SIGKILL --mount \
	--propagation private bash $work/stage1.sh" >"$work/console.log" 2>&1 &
unshare_pid=$!

in_ns() { nsenter -t "$pid1" -m -p -r -w "$@"; }

for _ in $(seq 100); do
	pid1=$(cat /proc/"$unshare_pid"/task/"$unshare_pid"/children 2>/dev/null | awk '{print $1}')
	[ -n "$pid1" ] && break
	sleep 0.1
done
[ -n "$pid1" ] || fail "the namespace's PID 1 did not start"
[ -z "$cgdir" ] || echo "$unshare_pid" >"$cg_self/cgroup.procs"
touch "$work/go"
state=
for _ in $(seq 300); do
	state=$(in_ns systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded) break ;; esac
	sleep 0.2
done
case "$state" in
running|degraded) ;;
*) tail -n 40 "$work/console.log" >&2; cat "$work/install.log" >&2 || true
   in_ns systemctl list-jobs --no-pager >&2 || true
   fail "systemd did not come up (state: ${state:-none})" ;;
esac
step "systemd is $state (PID 1 is $pid1 on the host)"
[ "$state" = degraded ] && in_ns systemctl --failed --no-legend --no-pager || true

prefix=$(meson introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
confd=$prefix/etc/bitmix/conf.d
model=$prefix/share/bitmix/models/fmnist-resnet.bmx
ctl=$prefix/bin/bitmixctl
show() { in_ns systemctl show -P "$1" bitmixd.service; }
journal() { in_ns journalctl --no-pager -o cat -u bitmixd.service; }
# journald writes a moment after the fact: look for PATTERN for up to 5 s.
journal_has() {
	for _ in $(seq 50); do
		journal | grep -qi "$1" && return 0
		sleep 0.1
	done
	return 1
}

# --- systemd-analyze verify, and the exposure score for the report ---
out=$(in_ns systemd-analyze verify /lib/systemd/system/bitmixd.service /lib/systemd/system/bitmixd.socket 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
step "systemd-analyze verify: clean"
in_ns systemd-analyze security --offline=true bitmixd.service 2>&1 | grep -E "^✗|Overall" || true

# The system bus runs (the D-Bus API's tests build on it).
in_ns busctl --system --no-pager list >/dev/null || fail "no system bus"

# --- socket activation: nothing runs before the first client ---
[ "$(in_ns systemctl is-active bitmixd.socket)" = active ] || fail "bitmixd.socket is not active"
[ "$(show ActiveState)" = inactive ] || fail "bitmixd.service runs before any client"
in_ns stat -c '%U:%G %a' /run/bitmix/bitmixd.sock | grep -qx 'bitmixd:bitmix 660' ||
	fail "socket owner/mode: $(in_ns stat -c '%U:%G %a' /run/bitmix/bitmixd.sock)"
out=$(in_ns "$ctl" status) || fail "bitmixctl status over the activated socket: $out"
[ "$(show ActiveState)" = active ] || fail "the first client did not activate bitmixd.service"
[ "$(show Type)" = notify ] || fail "bitmixd.service is not Type=notify"
step "socket activation: bitmixd.service started by the first client, now $(show SubState)"

# READY: the daemon's "serving" line (logged just before READY=1) precedes systemd's "Started".
journal | awk '/serving [0-9]+ model/ { s = NR } /^Started / { if (!s) exit 1; ok = 1 }
	       END { exit ok ? 0 : 1 }' || fail "systemd called it started before the daemon was ready"
[ "$(show StatusText)" != "" ] || fail "no STATUS= text"
step "READY: active after READY=1; status: $(show StatusText)"

# Clients need the group bitmix (SocketGroup=, mode 0660).
gid=$(in_ns getent group bitmix | cut -d: -f3)
sock=/run/bitmix/bitmixd.sock
in_ns setpriv --reuid=65534 --regid=65534 --clear-groups "$ctl" --socket $sock status >/dev/null 2>&1 &&
	fail "a user outside group bitmix could connect"
in_ns setpriv --reuid=65534 --regid=65534 --groups="$gid" "$ctl" --socket $sock status >/dev/null ||
	fail "a member of group bitmix could not connect"
step "socket permissions: group bitmix connects, others are refused"

# --- D-Bus on the real system bus: the name, properties, bitmixctl over it, the admin rule ---
dbus_get() { in_ns busctl --system get-property org.bitmix.Daemon1 /org/bitmix/Daemon1 org.bitmix.Daemon1 "$@"; }
version=$(dbus_get Version) || fail "org.bitmix.Daemon1 is not on the system bus"
[ "$(dbus_get Governor)" = "$(printf 's "%s"' "$(in_ns "$ctl" --socket $sock governor | head -n 1 | awk '{print $NF}')")" ] ||
	fail "Governor over D-Bus ($(dbus_get Governor)) disagrees with the socket"
in_ns busctl --system --no-pager tree org.bitmix.Daemon1 | grep -q /org/bitmix/Daemon1/model/fmnist ||
	fail "busctl tree does not list the model object"
json=$(in_ns "$ctl" --json status) && case $json in "{"*'"governor"'*"}") ;; *) false ;; esac ||
	fail "bitmixctl --json status over D-Bus: $json"
in_ns setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system get-property \
	org.bitmix.Daemon1 /org/bitmix/Daemon1 org.bitmix.Daemon1 Models >/dev/null ||
	fail "anyone may read properties over D-Bus, yet nobody could not"
in_ns setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system call org.bitmix.Daemon1 \
	/org/bitmix/Daemon1 org.bitmix.Daemon1 SetGovernor s powersave >/dev/null 2>&1 &&
	fail "nobody switched the governor over D-Bus"
step "D-Bus: org.bitmix.Daemon1 on the system bus ($version), bitmixctl over it, nobody may read but not switch"

# --- reload with a broken drop-in: refused, located, the old configuration kept ---
gov_before=$(in_ns "$ctl" governor | head -n 1)
in_ns sh -c "mkdir -p $confd && printf 'governor:\n  name: powersave\nlog_level: loud\n' > $confd/50-test.yaml"
if in_ns systemctl reload bitmixd.service 2>"$work/reload.err"; then
	fail "systemctl reload succeeded with a broken drop-in"
fi
journal_has "$confd/50-test.yaml:3:12: log_level" ||
	fail "the journal does not name $confd/50-test.yaml:3:12: $(journal | tail -n 5)"
[ "$(show ActiveState)" = active ] || fail "a failed reload stopped the service"
[ "$(in_ns "$ctl" governor | head -n 1)" = "$gov_before" ] || fail "a failed reload changed the governor"
step "reload with a broken drop-in: refused, journal: $(journal | grep -o "[^ ]*50-test.yaml:3:12: [^(]*" | tail -n 1)"

# --- reload with a good drop-in: applied (the governor block merges key by key) ---
in_ns sh -c "printf 'governor:\n  name: powersave\n' > $confd/50-test.yaml"
in_ns systemctl reload bitmixd.service || fail "systemctl reload with a good drop-in failed"
in_ns "$ctl" governor | head -n 1 | grep -q powersave || fail "the drop-in's governor is not running: $(in_ns "$ctl" governor)"
step "reload with a good drop-in: applied ($(in_ns "$ctl" governor | head -n 1))"

# --- /run/bitmix/conf.d: hidden by the same name in /etc, else merged in lexical order ---
in_ns sh -c "printf 'log_level: loud\n' > /run/bitmix/conf.d/50-test.yaml"
in_ns sh -c "printf 'governor:\n  name: performance\n' > /run/bitmix/conf.d/60-run.yaml"
in_ns systemctl reload bitmixd.service || fail "reload with runtime drop-ins (50-test.yaml should be hidden by $confd)"
in_ns "$ctl" governor | head -n 1 | grep -q performance || fail "/run/bitmix/conf.d/60-run.yaml did not apply after 50-test.yaml"
in_ns rm /run/bitmix/conf.d/50-test.yaml /run/bitmix/conf.d/60-run.yaml
in_ns systemctl reload bitmixd.service || fail "reload after removing the runtime drop-ins"
in_ns "$ctl" governor | head -n 1 | grep -q powersave || fail "back to $confd/50-test.yaml's governor"
step "runtime drop-ins: /etc hides /run by name, the rest merge in lexical order"

# --- the fd store follows the served set: a model replaced by a reload leaves it ---
stored() { in_ns ls -l /proc/1/fd | grep -c "memfd:fmnist" || true; }
[ "$(stored)" = 1 ] || fail "systemd's fd store holds $(stored) copies of fmnist, expected 1"
in_ns cp "$model" /opt/fmnist-copy.bmx
in_ns sh -c "printf 'models:\n  fmnist: /opt/fmnist-copy.bmx\n' > $confd/60-model.yaml"
in_ns systemctl reload bitmixd.service || fail "reload with the model at a new path"
journal | grep "model fmnist: loaded" | tail -n 1 | grep -q fmnist-copy.bmx || fail "the new path was not loaded"
[ "$(stored)" = 1 ] || fail "after replacing fmnist the fd store holds $(stored) copies (FDSTOREREMOVE)"
in_ns rm "$confd/60-model.yaml"
in_ns systemctl reload bitmixd.service || fail "reload back to the bundled model"
[ "$(stored)" = 1 ] || fail "after switching back the fd store holds $(stored) copies"
step "fd store: one memfd per model in PID 1 across a reload that replaced it"

# The sandbox as it runs: its own user, only the two capabilities.
main=$(show MainPID)
in_ns grep -q "^Uid:.*[^0-9]$(in_ns id -u bitmixd)[^0-9]" /proc/"$main"/status || fail "bitmixd does not run as user bitmixd"
[ "$(in_ns grep ^CapEff /proc/"$main"/status | awk '{print $2}')" = 000000c000000000 ] ||
	fail "effective capabilities: $(in_ns grep ^CapEff /proc/"$main"/status)"
step "sandbox: runs as bitmixd with CAP_BPF+CAP_PERFMON only"

# --- the watchdog: a hung loop is killed and restarted, models come back from the fd store ---
restarts=$(show NRestarts)
in_ns systemctl kill --kill-who=main -s SIGUSR2 bitmixd.service
for _ in $(seq 150); do
	[ "$(show NRestarts)" -gt "$restarts" ] && [ "$(show ActiveState)" = active ] && break
	sleep 0.1
done
[ "$(show NRestarts)" -gt "$restarts" ] || fail "the watchdog did not restart the hung daemon"
journal_has "watchdog timeout" ||
	fail "no watchdog timeout in the journal"
in_ns "$ctl" status >/dev/null || fail "bitmixctl status after the watchdog restart"
step "watchdog: hung loop killed and restarted (NRestarts=$(show NRestarts))"

# --- fd store: a restart serves the models without their file ---
in_ns mv "$model" "$model.away"
in_ns systemctl restart bitmixd.service || fail "systemctl restart"
in_ns "$ctl" bits fmnist >/dev/null || fail "model fmnist not served after a restart without its file"
{ printf 'P5\n28 28\n255\n'; head -c 784 /dev/urandom; } | in_ns sh -c 'cat > /var/tmp/image.pgm'
out=$(in_ns "$ctl" infer fmnist /var/tmp/image.pgm) || fail "inference after a restart without the model file: $out"
last_load() { journal | grep "model fmnist: loaded" | tail -n 1; }
last_load | grep -q "from systemd's fd store" || fail "the restart did not take fmnist from the fd store: $(last_load)"
step "fd store: restarted without the model file, served fmnist from the store ($(echo "$out" | tail -n 1))"
in_ns mv "$model.away" "$model"

# The restart-to-first-served-request time, fd store vs file (stop releases the store).
measure() {
	local a b
	a=$(date +%s%N)
	in_ns systemctl "$1" bitmixd.service
	in_ns "$ctl" bits fmnist >/dev/null
	b=$(date +%s%N)
	echo $(( (b - a) / 1000000 ))
}
ms_store=$(measure restart)
last_load | grep -q "from systemd's fd store" || fail "restart: not from the fd store: $(last_load)"
in_ns systemctl stop bitmixd.service 2>/dev/null
ms_file=$(measure start)
last_load | grep -q "from systemd's fd store" && fail "start after stop: the fd store was not released"
step "restart to first served request: ${ms_store} ms from the fd store, ${ms_file} ms from the file"
[ "$(stored)" = 1 ] || fail "after the restarts systemd's fd store holds $(stored) copies of fmnist"

# A model file replaced since it was stored is read again, and its stale copy leaves the store.
in_ns touch "$model"
in_ns systemctl restart bitmixd.service
in_ns "$ctl" bits fmnist >/dev/null || fail "fmnist not served after its file changed"
last_load | grep -q "from systemd's fd store" && fail "a changed model file was not read again"
journal_has "changed since it was stored" || fail "no word of the stale stored copy"
[ "$(stored)" = 1 ] || fail "after a changed file the fd store holds $(stored) copies of fmnist"
step "fd store: a model file changed since it was stored is read again"

# D-Bus activation: with the service stopped, a call to org.bitmix.Daemon1 starts it.
in_ns systemctl stop bitmixd.service
[ "$(show ActiveState)" = inactive ] || fail "bitmixd.service did not stop"
dbus_get Version >/dev/null || fail "D-Bus activation: no answer from org.bitmix.Daemon1"
[ "$(show ActiveState)" = active ] || fail "D-Bus activation: bitmixd.service is $(show ActiveState)"
step "D-Bus activation: a call on the system bus started bitmixd.service"

in_ns journalctl --no-pager -o cat -u bitmixd.service | grep -E "AddressSanitizer|runtime error" &&
	fail "sanitizer or error report in the journal"
step "all systemd checks passed"
