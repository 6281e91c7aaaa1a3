"""The deployment walk-through: a Fashion-MNIST CNN trained with deepseek, then
post-training quantized (PTQ), quantization-aware trained (QAT), 50% structurally pruned +
int8, each exported to ONNX and run in ONNX Runtime. Prints accuracy, file size and latency
for every variant, in deepseek and in ONNX Runtime.

    apt-get install dataset-fashion-mnist        # or: scripts/deploy_walkthrough.sh
    PYTHONPATH=python python3 examples/python/deploy_fashion_mnist.py [--epochs 3] [--quick]

``--quick`` trains on 6000 images for one epoch (a smoke run of every step, ~1 minute).
The ONNX files it writes (``--out``, default ``target/deploy``) continue to other runtimes:
TensorRT (``trtexec --onnx=cnn_int8_qdq.onnx --int8`` reads the QDQ scales directly), TVM
(``tvm.relay.frontend.from_onnx``) or ONNX Runtime Mobile (``python -m
onnxruntime.tools.convert_onnx_models_to_ort``); none of them is installed here.
"""

import argparse
import copy
import gzip
import os
import struct
import time
import warnings

import numpy as np

import deepseek
from deepseek import nn
from deepseek.ao import quantization as tq
from deepseek.nn.utils import prune

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path):
    """A gzip'd idx file as a uint8 numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    out = {}
    for split, (imgs, labels) in FILES.items():
        paths = [os.path.join(data_dir, f) for f in (imgs, labels)]
        if not all(os.path.exists(p) for p in paths):
            raise SystemExit(f"Fashion-MNIST not found in {data_dir}: apt-get install "
                             "dataset-fashion-mnist (or --data DIR with the idx .gz files)")
        x = (read_idx(paths[0]).astype(np.float32) / 255.0 - 0.2860) / 0.3530
        out[split] = (x[:, None], read_idx(paths[1]).astype(np.int64))
    return out


class CNN(nn.Module):
    """conv(32)-bn-relu-pool, conv(64)-bn-relu-pool, fc(128)-relu, fc(10), between a
    QuantStub and a DeQuantStub (identities until the model is quantized)."""

    def __init__(self, c1=32, c2=64, hidden=128):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(self.quant(x)))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.dequant(self.fc2(x))


FUSE = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]]


def batches(x, y, bs, rng=None):
    idx = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    for i in range(0, len(y), bs):
        j = idx[i:i + bs]
        yield deepseek.from_numpy(np.ascontiguousarray(x[j])), deepseek.from_numpy(y[j])


def train(model, data, epochs, lr, seed=0, log=""):
    opt = deepseek.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    for ep in range(epochs):
        t0, total, n = time.time(), 0.0, 0
        for xb, yb in batches(*data, 128, rng):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total, n = total + loss.item(), n + 1
        print(f"  {log} epoch {ep + 1}/{epochs}: loss {total / n:.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    return model


def accuracy(model, data):
    model.eval()
    correct = 0
    with deepseek.no_grad():
        for xb, yb in batches(*data, 500):
            correct += int((model(xb).argmax(1) == yb).sum().item())
    return 100.0 * correct / len(data[1])


def latency_ms(fn, x, reps=20):
    fn(x)
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def onnx_eval(path, data, example):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = deepseek.get_num_threads()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    correct = 0
    for i in range(0, len(data[1]), 500):
        (y,) = sess.run(None, {"x": data[0][i:i + 500]})
        correct += int((y.argmax(1) == data[1][i:i + 500]).sum())
    lat = latency_ms(lambda a: sess.run(None, {"x": a}), example)
    return 100.0 * correct / len(data[1]), lat


def export(model, path):
    ex = deepseek.zeros(1, 1, 28, 28)
    deepseek.onnx.export(model, (ex,), path, input_names=["x"], output_names=["logits"],
                         dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return os.path.getsize(path)


def ptq(model, calib):
    m = copy.deepcopy(model).eval()
    m.qconfig = tq.get_default_qconfig("x86")
    m = tq.fuse_modules(m, FUSE)
    p = tq.prepare(m)
    with deepseek.no_grad():
        for xb, _ in batches(*calib, 250):
            p(xb)
    return tq.convert(p)


def qat(model, data, epochs, lr):
    m = copy.deepcopy(model).train()
    m.qconfig = tq.get_default_qat_qconfig("x86")
    m = tq.prepare_qat(tq.fuse_modules_qat(m, FUSE))
    train(m, data, epochs, lr, seed=1, log="QAT")
    tq.disable_observer(m)
    return tq.convert(m.eval())


def prune_structured(model, amount):
    """PyTorch's ``prune.ln_structured`` (L2 norm over output channels / units) on conv1,
    conv2 and fc1, made permanent with ``prune.remove``; then ``prune.shrink`` (a deepseek
    extension) cuts the zeroed channels and units out: a smaller dense model (fewer weights
    and less compute, not just zeros). conv2 pads with zeros, so the constant that conv1's
    removed channels still fed it (bias, BatchNorm shift) can only be folded into conv2's bias
    exactly away from the image border: ``strict=False`` accepts that (it warns), and the
    fine-tuning that follows absorbs the difference."""
    m = copy.deepcopy(model)
    for mod in (m.conv1, m.conv2, m.fc1):
        prune.ln_structured(mod, "weight", amount=amount, n=2, dim=0)
        prune.remove(mod, "weight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return prune.shrink(m, example_input=deepseek.zeros(1, 1, 28, 28), strict=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEBIAN_DIR)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--train-size", type=int, default=60000,
                    help="use the first N training images")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="target/deploy")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    deepseek.manual_seed(0)
    d = load(args.data)
    train_set, test_set = d["train"], d["test"]
    train_set = (train_set[0][:args.train_size], train_set[1][:args.train_size])
    if args.quick:
        train_set = (train_set[0][:6000], train_set[1][:6000])
        test_set = (test_set[0][:2000], test_set[1][:2000])
        args.epochs = args.qat_epochs = args.finetune_epochs = 1
    calib = (train_set[0][:1000], train_set[1][:1000])
    ex = np.ascontiguousarray(test_set[0][:64])
    xt = deepseek.from_numpy(ex)
    rows = []

    def report(name, model, onnx_path, ref_size=None):
        acc = accuracy(model, test_set)
        size = export(model, onnx_path)
        ort_acc, ort_ms = onnx_eval(onnx_path, test_set, ex)
        with deepseek.no_grad():
            ds_ms = latency_ms(model, xt)
        rel = "" if ref_size is None else f" ({100.0 * size / ref_size:.1f}% of f32)"
        print(f"{name}: accuracy {acc:.2f}% (ONNX Runtime {ort_acc:.2f}%), ONNX file "
              f"{size / 1024:.1f} KiB{rel}, batch-64 latency deepseek {ds_ms:.2f} ms, "
              f"ONNX Runtime {ort_ms:.2f} ms")
        rows.append((name, acc, ort_acc, size, ds_ms, ort_ms))
        return acc, size

    print("1. f32 training")
    model = train(CNN(), train_set, args.epochs, 1e-3, log="f32")
    f32_acc, f32_size = report("f32", model, f"{args.out}/cnn_f32.onnx")

    print("2. post-training static quantization (x86 qconfig, 1000 calibration images)")
    qm = ptq(model, calib)
    ptq_acc, _ = report("int8 PTQ", qm, f"{args.out}/cnn_int8_qdq.onnx", f32_size)

    print("3. quantization-aware training")
    qq = qat(model, train_set, args.qat_epochs, 1e-4)
    qat_acc, _ = report("int8 QAT", qq, f"{args.out}/cnn_int8_qat_qdq.onnx", f32_size)
    # QAT trains longer: its fair float reference gets the same extra epochs, in float
    ref = train(copy.deepcopy(model), train_set, args.qat_epochs, 1e-4, seed=1,
                log="f32 reference for QAT")
    qat_ref_acc = accuracy(ref, test_set)
    print(f"f32 trained as long as QAT: accuracy {qat_ref_acc:.2f}%")

    print("4. 50% structured pruning (L2, channels/units), fine-tune, int8 PTQ")
    small = prune_structured(model, 0.5)
    print(f"  pruned accuracy before fine-tuning: {accuracy(small, test_set):.2f}%")
    small = train(small, train_set, args.finetune_epochs, 5e-4, seed=2, log="fine-tune")
    report("pruned f32", small, f"{args.out}/cnn_pruned_f32.onnx", f32_size)
    pq = ptq(small, calib)
    pr_acc, pr_size = report("pruned int8", pq, f"{args.out}/cnn_pruned_int8_qdq.onnx",
                             f32_size)

    print("\nsummary (targets: int8 file <= 30% of f32; PTQ drop <= 1.0, QAT drop <= 0.5 "
          "points; pruned+int8 <= 15% of f32 with drop <= 2 points)")
    int8_size = rows[1][3]
    print(f"  int8 file {100.0 * int8_size / f32_size:.1f}% of f32; PTQ drop "
          f"{f32_acc - ptq_acc:+.2f}; QAT drop {f32_acc - qat_acc:+.2f} (vs f32 trained as "
          f"long: {qat_ref_acc - qat_acc:+.2f}); pruned+int8 "
          f"{100.0 * pr_size / f32_size:.1f}% of f32, drop {f32_acc - pr_acc:+.2f}")


if __name__ == "__main__":
    main()
