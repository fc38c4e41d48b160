#!/usr/bin/env bash
# The main job, end to end (the README's first command): build bitmix, start bitmixd on the
# bundled configuration and model, classify real Fashion-MNIST test images through a client,
# and watch the governor (power_allocator) change the model's bit-widths as the machine heats
# under load and cools when idle; then a client QoS hold, the statistics, userspace bits and
# per-sample adaptive precision; and a LINEAR-heavy model under a steady load, where fewer bits
# read fewer bytes and the governor lowers them.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup-deps.sh
if [ ! -d build ]; then
	meson setup build >/dev/null
fi
ninja -C build

data=/usr/share/datasets/fashion-mnist
images=$data/t10k-images-idx3-ubyte.gz
labels=$data/t10k-labels-idx1-ubyte.gz
model=$PWD/models/fmnist-resnet.bmx
limit=${BITMIX_DEMO_IMAGES:-2000}

# The bundled config, with the socket and the model path pointed into the build tree, and the
# simulated package (this VM has no thermal sensors) in a 45 C enclosure instead of a 25 C room,
# with a 3 s thermal time constant instead of 60 s and 60 W per busy CPU instead of 20 (the
# governor's power model told the same, and the power it sustains at 75 C), so that the demo heats
# past the control temperature and cools again in seconds, even on a machine so busy that the
# daemon gets half a CPU.
demo=$PWD/build/demo
mkdir -p "$demo"
# A LINEAR-heavy model where bits are bytes: 784 -> 4096 -> 4096 -> 4096 -> 10, random weights
# (its answers mean nothing), 37 MB at 8 bits: batch-1 GEMVs read w/8 of them from DRAM.
build/tools/bmx-gen --arch mlp4096 --name mlp -o "$demo/mlp.bmx"
sed -e "s|^socket:.*|socket: $demo/bitmixd.sock|" \
    -e "s|/usr/share/bitmix/models/[A-Za-z0-9_.-]*\.bmx|$model|" \
    -e "/^  fmnist: /a\\  mlp: $demo/mlp.bmx" \
    -e "s|^\( *heat_capacity_j_per_c:\).*|\1 2|" \
    -e "s|^\( *ambient_c:\).*|\1 45|" \
    -e "s|^\( *power_per_cpu_w:\).*|\1 60|" \
    -e "s|^\( *dynamic_power_w:\).*|\1 60|" \
    -e "s|^\( *sustainable_power_w:\).*|\1 15|" \
    config/bitmixd.yaml > "$demo/bitmixd.yaml"

build/daemon/bitmixd --config "$demo/bitmixd.yaml" 2> "$demo/bitmixd.log" &
daemon=$!
loads=()
stop_loads() {
	for p in "${loads[@]}"; do kill "$p" 2>/dev/null || true; done
	wait "${loads[@]}" 2>/dev/null || true
}
cleanup() {
	stop_loads
	kill $daemon 2>/dev/null || true
}
trap cleanup EXIT
ctl() { build/client/bitmixctl --socket "$demo/bitmixd.sock" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done

# One line: time, temperature, the model's ($watched, fmnist unless set) average bits, every
# layer's bits, and the daemon's work and its cap.
watched=fmnist
watch_line() {
	local status temp avg layers work
	status=$(ctl status)
	temp=$(sed -n 's/^  reading: *\([0-9.-]* C\).*/\1/p' <<<"$status")
	work=$(sed -n 's/^    work: \([0-9.]*\) of \([0-9]*\) CPUs busy\( (saturated)\)\{0,1\}, \(no cap\|capped at [0-9.]* CPUs\).*/\1 CPUs busy, \4/p' <<<"$status")
	avg=$(ctl stats "$watched" | sed -n 's/.*average \([0-9.]*\) bits.*/\1/p')
	layers=$(ctl bits "$watched" | sed -n 's/^ *layer *[0-9]*: w\([0-9]\) a[0-9].*/\1/p' | tr -d '\n')
	printf '  %5ss  %-8s average %-5s bits, per layer %s; %s\n' "$1" "$temp" "$avg" "$layers" \
		"$work"
}
watch_for() { # HALF-SECONDS
	for ((i = 0; i < $1; i++)); do
		watch_line "$((i / 2)).$((i % 2 * 5))"
		sleep 0.5
	done
}

echo "== bitmixd is up on the bundled configuration"
ctl status
ctl models

echo
echo "== cool and idle: the governor (power_allocator) keeps full precision"
ctl bits fmnist | head -n 12
ctl infer fmnist "$images" --labels "$labels" --limit "$limit" --batch 16 --quiet

echo
echo "== load: 3 clients classify continuously; the simulated package heats (control 75 C)"
# Each load loops over bitmixctl (run directly, so that $! is the client itself); on TERM it
# stops its running client too (else that one would go on through its 10000 images after the
# load was meant to stop).
for i in 1 2 3; do
	(
		trap 'kill $client 2>/dev/null; exit 0' TERM
		while :; do
			build/client/bitmixctl --socket "$demo/bitmixd.sock" infer fmnist "$images" \
				--limit 10000 --batch 16 --quiet >/dev/null 2>&1 &
			client=$!
			wait $client || break
		done
	) &
	loads+=($!)
done
watch_for 16
cat <<'NOTE'
  (Three clients that ask again as soon as they are answered keep every worker busy: fewer bits
  would only serve more samples at the same power. So power_allocator keeps full precision and
  caps the daemon's work at its power budget (the second cooling device, docs/governor.md),
  which holds the package at the control temperature; every 10 s it probes whether fewer bits
  would leave the CPUs idle time, which shows as a short dip in the bits.)
NOTE
echo
echo "== hot: classifying at the bits the governor chose"
ctl infer fmnist "$images" --labels "$labels" --limit "$limit" --batch 16 --quiet

echo
echo "== a client holds a floor of 6 bits for 3 s (QoS hold), then lets go"
ctl hold fmnist min-bits 6 3 &
hold=$!
sleep 1
watch_for 3
wait $hold
watch_line 0.0

echo
echo "== load stops: the package cools and full precision returns"
stop_loads
loads=()
watch_for 12

echo
echo "== where bits are bytes: the LINEAR-heavy model mlp under a steady load"
# What two clients get from it at batch 1 while cool (full precision), then 80% of that offered
# by two clients at a steady pace: the CPUs can idle, so fewer bits mean less CPU time for the
# same images.
for i in 1 2; do
	ctl infer mlp "$images" --limit 600 --batch 1 --quiet > "$demo/mlp-capacity.$i" &
	loads+=($!)
done
wait "${loads[@]}"
loads=()
capacity=$(cat "$demo"/mlp-capacity.* | sed -n 's/.*(\([0-9]*\) images\/s).*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
offer=$(( capacity * 8 / 10 / 2 ))
echo "  two clients, batch 1: $capacity images/s at 8 bits; now offering $offer images/s each"
for i in 1 2; do
	ctl infer mlp "$images" --limit $(( offer * 12 )) --batch 1 --rate "$offer" --quiet \
		> "$demo/mlp.$i" &
	loads+=($!)
done
watched=mlp
watch_for 20
watched=fmnist
wait "${loads[@]}" 2>/dev/null || true
loads=()
sed -n 's/^\([0-9]* image(s) in .*\)/  \1/p' "$demo"/mlp.[12]
ctl stats mlp | head -n 1
cat <<'NOTE'
  (Every sample of mlp reads its weights once, so its cost follows the bits: the governor holds
  the control temperature by lowering them and the daemon's busy CPUs fall at the same rate
  served. The bundled CNN above is compute-bound: fewer bits buy it no time on this CPU, so there
  the governor keeps its precision and caps the work instead.)
NOTE
for _ in $(seq 20); do # cool down before the rest
	sleep 0.5
done

echo
echo "== statistics (as cpufreq_stats)"
ctl stats fmnist

echo
echo "== userspace governor: bits set by hand"
ctl governor userspace
for spec in 4 2; do
	ctl bits fmnist "$spec" >/dev/null
	echo "-- every layer that allows it at $spec bits"
	ctl infer fmnist "$images" --labels "$labels" --limit "$limit" --batch 16 --quiet
done
ctl bits fmnist 8 >/dev/null
echo
echo "== per-sample adaptive precision under an 8-bit ceiling (docs/adaptive.md)"
for precision in fixed cascade policy; do
	echo "-- $precision"
	ctl infer fmnist "$images" --labels "$labels" --limit "$limit" --batch 16 --quiet \
		--precision "$precision"
done
ctl governor power_allocator >/dev/null

echo
echo "== five images classified one by one"
ctl infer fmnist "$images" --labels "$labels" --limit 5 --batch 1

kill -TERM $daemon
wait $daemon
trap - EXIT
echo
echo "== bitmixd log (governor and sensors)"
grep -E "governor|sensors|model|hold|step_wise" "$demo/bitmixd.log" | head -n 40
