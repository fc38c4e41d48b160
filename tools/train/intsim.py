# SPDX-License-Identifier: MIT
"""The trainer's integer simulation of the C engine, run from exactly what export.py wrote
(model.txt + model.bin, the arrays bmx-pack puts in the .bmx). It follows the "Arithmetic" section
of docs/model-format.md operation by operation: float32 elementwise steps in numpy (each one
correctly rounded, no fused multiply-add), accumulators as exact integers (convolutions of
integer codes in float32 where a bound proves them exact, see _exact_conv), the global average
pool summed in the engine's order."""
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

F32 = np.float32


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def load(out_dir):
    """Parse model.txt and split model.bin by the shapes the manifest implies."""
    nodes, layers, names = [], [], {}
    shapes = [(28, 28, 1)]
    blob = open(os.path.join(out_dir, "model.bin"), "rb").read()
    pos = 0
    for line in open(os.path.join(out_dir, "model.txt")):
        tok = line.split("#")[0].split()
        if not tok or tok[0] in ("bmx-pack", "model", "output"):
            continue
        kv = dict(t.split("=", 1) for t in tok[1:])
        ins = [int(x) for x in kv["in"].split(",")]
        node = {**kv, "op": tok[0], "in": ins}
        h, w, c = shapes[ins[0]]
        if tok[0] in ("conv2d", "linear"):
            oc = int(kv["out_c"])
            mask = int(kv["mask"], 0)
            bits = [b for b in range(2, 9) if mask >> b & 1]
            prev = names[kv["tbn_prev"]] if kv["tbn_prev"] != "-" else -1
            rows = len(layers[prev]["bits"]) if prev >= 0 else 1
            if tok[0] == "conv2d":
                k, s, p, g = (int(kv[x]) for x in ("k", "stride", "pad", "groups"))
                red, shape = k * k * (c // g), (_out(h, k, s, p), _out(w, k, s, p), oc)
            else:
                red, shape = h * w * c, (1, 1, oc)
            sizes = [(np.int8, oc * red), (F32, oc), (F32, len(bits)), (F32, rows * len(bits) * 2 * oc),
                     (F32, len(bits))]
            arrs = []
            for dt, n in sizes:
                arrs.append(np.frombuffer(blob, dtype=np.dtype(dt).newbyteorder("<"), count=n, offset=pos).astype(dt))
                pos += n * np.dtype(dt).itemsize
            lay = {"name": kv["name"], "bits": bits, "prev": prev, "codes": arrs[0].reshape(oc, -1),
                   "w_scale": arrs[1], "a_step": arrs[2], "tbn": arrs[3].reshape(rows, len(bits), 2, oc),
                   "sensitivity": arrs[4], "red": red}
            names[kv["name"]] = len(layers)
            node["layer"] = len(layers)
            layers.append(lay)
        elif tok[0] == "maxpool":
            k, s = int(kv["k"]), int(kv["stride"])
            shape = (_out(h, k, s, 0), _out(w, k, s, 0), c)
        elif tok[0] == "global_avgpool":
            shape = (1, 1, c)
        else:
            shape = (h, w, c)
        shapes.append(shape)
        nodes.append(node)
    if pos != len(blob):
        raise ValueError(f"{out_dir}/model.bin: {len(blob) - pos} bytes left after the last layer")
    return {"nodes": nodes, "layers": layers, "shapes": shapes}


_OPS = {2: "conv2d", 3: "linear", 4: "add", 5: "maxpool", 7: "global_avgpool", 8: "relu"}


def load_bmx(path):
    """The same model structure read back from a .bmx file (docs/model-format.md), so that the
    simulation can check a packed or committed model too. Only the ops this trainer emits."""
    raw = open(path, "rb").read()
    u = lambda fmt, off: struct.unpack_from("<" + fmt, raw, off)  # noqa: E731
    table, count = u("Q", 24)[0], u("I", 32)[0]
    sec = {}
    for i in range(count):
        typ, _, off, size = u("IIQQ", table + 32 * i)
        sec[typ] = (off, size)
    model_off, nodes_off, layers_off, data_off = (sec[t][0] for t in (1, 2, 3, 4))
    node_count, layer_count, input_node = u("III", model_off + 48)
    if input_node != 0:
        raise ValueError(f"{path}: the input is node {input_node}, not 0")
    arr = lambda d, off, dt, shape: np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<"),  # noqa: E731
                                                 count=u("Q", off + 8)[0] // np.dtype(dt).itemsize,
                                                 offset=data_off + u("Q", off)[0]).astype(dt).reshape(shape)
    layers = []
    for li in range(layer_count):
        lo = layers_off + 160 * li
        node, prev, mask = u("iiH", lo + 32)
        bits = [b for b in range(2, 9) if mask >> b & 1]
        oc = u("III", nodes_off + 64 * node + 16)[2]
        rows = len(layers[prev]["bits"]) if prev >= 0 else 1
        layers.append({"name": raw[lo:lo + 32].split(b"\0")[0].decode(), "bits": bits, "prev": prev,
                       "codes": arr(0, lo + 56, np.int8, (oc, -1)), "w_scale": arr(0, lo + 72, F32, (-1,)),
                       "a_step": arr(0, lo + 88, F32, (-1,)), "tbn": arr(0, lo + 104, F32, (rows, len(bits), 2, oc)),
                       "sensitivity": arr(0, lo + 120, F32, (-1,))})
    nodes = []
    for ni in range(1, node_count):
        no = nodes_off + 64 * ni
        op, n_in, in0, in1, layer = u("HHiii", no)
        kh, _, sh, _, pt, _, _, _ = u("HHHHHHHH", no + 28)
        node = {"op": _OPS[op], "in": [in0, in1][:n_in], "k": str(kh), "stride": str(sh), "pad": str(pt),
                "groups": str(u("I", no + 44)[0])}
        if layer >= 0:
            node["layer"] = layer
        nodes.append(node)
    return {"nodes": nodes, "layers": layers}


def _quantize(x, step, bits):
    inv = F32(1.0) / F32(step)
    t = (x * inv).astype(F32)
    t = np.fmin(np.fmax(t, F32(0)), F32(2 ** bits - 1))
    return np.rint(t)


FLOAT64 = False  # True: every convolution in float64 (the slow path, 5-10x slower; same results)


def _exact_conv(q, wt, stride, pad, groups, float64=False):
    """The exact integer convolution of activation codes Q (0..255, float) with odd weight
    values WT (|v| <= 255), as float64. float32 convolutions are exact here, whatever the order
    of the sums, as long as every partial sum stays below 2^24 in magnitude: each product is an
    integer below 2^16 and each partial sum of one output is at most max(q) * sum|v| over that
    output's weights. When that bound is not met the codes are split into 4-bit halves,
    q = 16 qh + ql (bound 15 * sum|v| < 15 * 432 * 255 < 2^24), and the halves' exact float32
    results are combined in float64. Anything inexact (such as a Winograd or FFT algorithm)
    would give non-integers, which the result is checked for."""
    w = torch.from_numpy(wt.astype(np.float64 if float64 else np.float32))
    conv = lambda a: F.conv2d(torch.from_numpy(a), w, None, stride, pad, 1, groups).numpy()  # noqa: E731
    if float64:
        return conv(q.astype(np.float64))
    l1 = float(np.abs(wt).reshape(wt.shape[0], -1).sum(1).max())
    if float(q.max(initial=0)) * l1 < 2 ** 24:
        acc = conv(q.astype(np.float32)).astype(np.float64)
    else:
        qh = np.floor(q / 16)
        assert 15 * l1 < 2 ** 24
        acc = 16 * conv(qh.astype(np.float32)).astype(np.float64) + conv((q - 16 * qh).astype(np.float32))
    if not np.array_equal(acc, np.rint(acc)):
        raise ArithmeticError("intsim: a float32 convolution was not exact")
    return acc


def _layer(node, lay, x, w_bits, prev_bits):
    """x: float32 N x C x H x W (conv) -> float32 output; returns (y, integer accumulators)."""
    bi = lay["bits"].index(w_bits)
    q = _quantize(x, lay["a_step"][bi], w_bits)
    v = 2 * (lay["codes"].astype(np.int32) >> (8 - w_bits)) + 1
    if node["op"] == "conv2d":
        k, g = int(node["k"]), int(node["groups"])
        wt = v.reshape(v.shape[0], k, k, -1).transpose(0, 3, 1, 2)
        acc = _exact_conv(q, wt, int(node["stride"]), int(node["pad"]), g, FLOAT64)
        shape = (1, -1, 1, 1)
    else:
        flat = q.transpose(0, 2, 3, 1).reshape(q.shape[0], -1) if q.ndim == 4 else q
        acc = flat.astype(np.float64) @ v.astype(np.float64).T
        shape = (1, -1)
    p = 0 if lay["prev"] < 0 else prev_bits
    g, beta = lay["tbn"][p, bi, 0], lay["tbn"][p, bi, 1]
    m = (lay["w_scale"] * F32(2.0 ** (7 - w_bits))).astype(F32) * g
    mult = (F32(lay["a_step"][bi]) * m).astype(F32)
    y = acc.astype(F32) * mult.reshape(shape)
    y = (y + beta.reshape(shape)).astype(F32)
    return y, acc


def run(model, x, bits, keep_acc=False, chunk=32):
    """x: float32 N x 1 x 28 x 28 (pixel / 255); bits: per-layer bit-widths (w = a). Returns the
    float32 logits and, with KEEP_ACC, each layer's accumulators. Images go through in chunks of
    CHUNK (every op is per image, so the result is the same): the convolutions of a few dozen
    images stay in cache and run faster than one of thousands."""
    parts = [_run(model, x[i:i + chunk], bits) for i in range(0, len(x), chunk)]
    logits = np.concatenate([p[0] for p in parts])
    if not keep_acc:
        return logits
    return logits, [np.concatenate([p[1][k] for p in parts]) for k in range(len(parts[0][1]))]


def _run(model, x, bits):
    vals, accs = [x.astype(F32)], []
    for node in model["nodes"]:
        a = vals[node["in"][0]]
        op = node["op"]
        if op in ("conv2d", "linear"):
            lay = model["layers"][node["layer"]]
            prev = model["layers"][lay["prev"]]["bits"].index(bits[lay["prev"]]) if lay["prev"] >= 0 else 0
            y, acc = _layer(node, lay, a, bits[node["layer"]], prev)
            accs.append(acc)
        elif op == "relu":
            y = np.fmax(a, F32(0))
        elif op == "add":
            y = (a + vals[node["in"][1]]).astype(F32)
        elif op == "maxpool":
            y = F.max_pool2d(torch.from_numpy(a), int(node["k"]), int(node["stride"])).numpy()
        elif op == "global_avgpool":
            s = np.zeros(a.shape[:2], F32)
            for h in range(a.shape[2]):
                for w in range(a.shape[3]):
                    s = (s + a[:, :, h, w]).astype(F32)
            y = (s / F32(a.shape[2] * a.shape[3])).astype(F32)
        else:
            raise ValueError(f"intsim: op {op} is not simulated")
        vals.append(y)
    return vals[-1], accs
