#!/usr/bin/env bash
# The main job, end to end (the README's first command): build bitmix, start bitmixd on the
# bundled configuration and model, classify real Fashion-MNIST test images through a client,
# and change the model's bit-widths while it serves, showing accuracy at each operating point.
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

# The bundled config, with the socket and the model path pointed into the build tree.
demo=$PWD/build/demo
mkdir -p "$demo"
sed -e "s|^socket:.*|socket: $demo/bitmixd.sock|" \
    -e "s|/usr/share/bitmix/models/fmnist-resnet.bmx|$model|" \
    config/bitmixd.yaml > "$demo/bitmixd.yaml"

build/daemon/bitmixd --config "$demo/bitmixd.yaml" 2> "$demo/bitmixd.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
ctl() { build/client/bitmixctl --socket "$demo/bitmixd.sock" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done

echo "== bitmixd is up"
ctl status
ctl models
cat <<'NOTE'

The model: a Bit-Mixer meta-quantized residual CNN trained on Fashion-MNIST by tools/train
(accuracy table: models/README.md). Every middle layer runs at 2..8 bits without retraining.
The governor is not implemented yet: bitmixctl sets the per-layer bits it will set.
NOTE

for spec in 8 4 2 mixed; do
	if [ "$spec" = mixed ]; then
		layers=$(ctl bits fmnist | grep -c '^ *layer')
		# 8 bits at both ends, alternating 4 and 2 bits in between.
		list=$(for ((i = 0; i < layers; i++)); do
			if ((i == 0 || i == layers - 1)); then echo -n "8,"; elif ((i % 2)); then echo -n "4,"; else echo -n "2,"; fi
		done)
		spec=${list%,}
	fi
	echo
	echo "== operating point: $spec"
	ctl bits fmnist "$spec" >/dev/null
	ctl bits fmnist | head -n 20
	ctl infer fmnist "$images" --labels "$labels" --limit "$limit" --batch 16 --quiet
done

echo
echo "== five images classified one by one"
ctl infer fmnist "$images" --labels "$labels" --limit 5 --batch 1

kill -TERM $daemon
wait $daemon
trap - EXIT
echo
echo "== bitmixd log"
cat "$demo/bitmixd.log"
