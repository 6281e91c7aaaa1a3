"""PGD adversarial training on Fashion-MNIST with deepseek (issue 16, part 3).

Trains the same small CNN twice -- plainly, and Madry-style on PGD examples through
``Trainer(adversarial=deepseek.adversarial.PGDConfig(...))`` -- then reports clean accuracy
and PGD-20 (L-inf, eps=0.1, random start) robust accuracy of both on the test set.

Data: Debian's ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``; the
gzip'd idx files land in /usr/share/datasets/fashion-mnist), or ``--data DIR``.

    PYTHONPATH=python python bench/adversarial_fashion_mnist.py            # full run
    PYTHONPATH=python python bench/adversarial_fashion_mnist.py --quick    # a smoke run

Target (the issue): the PGD-trained model keeps >= 70% accuracy under PGD-20 at eps=0.1,
the plain one falls near 0.
"""

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import deepseek  # noqa: E402
from deepseek import nn  # noqa: E402
from deepseek import adversarial as adv  # noqa: E402
from deepseek.trainer import Trainer  # noqa: E402

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path):
    """An idx file (gzip'd) as a numpy array (uint8 data; the magic number's type byte and
    dimension count are checked)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {data[:4]!r})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes of data for dims {dims}")
    return arr.reshape(dims)


def load_fashion_mnist(data_dir):
    missing = [f for pair in FILES.values() for f in pair
               if not os.path.exists(os.path.join(data_dir, f))]
    if missing:
        raise SystemExit(f"Fashion-MNIST not found in {data_dir} (missing {', '.join(missing)}).\n"
                         "Install Debian's package: apt-get install dataset-fashion-mnist "
                         "(or pass --data DIR holding the four idx .gz files).")
    out = {}
    for split, (imgs, labels) in FILES.items():
        x = read_idx(os.path.join(data_dir, imgs)).astype(np.float32) / 255.0
        y = read_idx(os.path.join(data_dir, labels)).astype(np.int64)
        out[split] = (x[:, None, :, :], y)  # [N, 1, 28, 28] in [0, 1]
    return out


class Batches:
    """An iterable of (x, y) deepseek batches, reshuffled each pass (seeded)."""

    def __init__(self, x, y, batch_size, shuffle, seed=0):
        self.x, self.y, self.bs, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        n = len(self.y)
        idx = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for i in range(0, n, self.bs):
            j = idx[i:i + self.bs]
            yield (deepseek.from_numpy(np.ascontiguousarray(self.x[j])),
                   deepseek.from_numpy(np.ascontiguousarray(self.y[j])))

    def __len__(self):
        return (len(self.y) + self.bs - 1) // self.bs


def make_cnn(c1, c2, hidden):
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train(model, loader, epochs, lr, adversarial=None):
    opt = deepseek.optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(model=model, optimizer=opt, adversarial=adversarial)
    t0 = time.perf_counter()
    hist = trainer.fit(loader, epochs=epochs, verbose=True)
    return time.perf_counter() - t0, hist["train_loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEBIAN_DIR)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels", type=int, nargs=2, default=[16, 32])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs-plain", type=int, default=3)
    ap.add_argument("--epochs-adv", type=int, default=6)
    ap.add_argument("--train-eps", type=float, default=0.1)
    ap.add_argument("--train-alpha", type=float, default=0.02)
    ap.add_argument("--train-steps", type=int, default=7)
    ap.add_argument("--eval-eps", type=float, default=0.1)
    ap.add_argument("--eval-alpha", type=float, default=0.01)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--train-subset", type=int, default=None, help="first N training images")
    ap.add_argument("--test-subset", type=int, default=None, help="first N test images")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2000 train / 500 test images, 1 epoch each")
    ap.add_argument("--extra-evals", action="store_true",
                    help="also FGSM (eps) and PGD-50 (alpha 2.5*eps/20) at the same eps: a "
                         "check against gradient masking (FGSM must not beat PGD)")
    ap.add_argument("--save-dir", default=None, help="save both models' state dicts here")
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    args = ap.parse_args()
    if args.quick:
        args.train_subset, args.test_subset = 2000, 500
        args.epochs_plain = args.epochs_adv = 1

    deepseek.set_num_threads(args.threads)
    data = load_fashion_mnist(args.data)
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    if args.train_subset:
        xtr, ytr = xtr[:args.train_subset], ytr[:args.train_subset]
    if args.test_subset:
        xte, yte = xte[:args.test_subset], yte[:args.test_subset]
    print(f"Fashion-MNIST: {len(ytr)} train / {len(yte)} test images; threads {args.threads}; "
          f"CNN conv{args.channels[0]}-conv{args.channels[1]}-fc{args.hidden}")
    test = Batches(xte, yte, 500, shuffle=False)
    eval_attack = adv.PGDConfig(eps=args.eval_eps, alpha=args.eval_alpha, steps=args.eval_steps,
                                norm="linf", random_start=True)
    train_attack = adv.PGDConfig(eps=args.train_eps, alpha=args.train_alpha,
                                 steps=args.train_steps, norm="linf", random_start=True)
    t_all = time.perf_counter()
    rows = []
    for name, epochs, attack in (("plain", args.epochs_plain, None),
                                 ("PGD-trained", args.epochs_adv, train_attack)):
        deepseek.manual_seed(args.seed)
        model = make_cnn(args.channels[0], args.channels[1], args.hidden)
        loader = Batches(xtr, ytr, args.batch_size, shuffle=True, seed=args.seed)
        print(f"\n== {name}: {epochs} epoch(s)" + (f", {attack}" if attack else ""))
        train_s, losses = train(model, loader, epochs, args.lr, attack)
        t0 = time.perf_counter()
        res = adv.robust_accuracy(model, test, attack=eval_attack)
        eval_s = time.perf_counter() - t0
        print(f"{name}: clean {res.clean:.4f}  PGD-{args.eval_steps} {res.robust:.4f}  "
              f"(train {train_s:.0f}s, eval {eval_s:.0f}s)")
        row = dict(model=name, epochs=epochs, clean=res.clean, robust=res.robust,
                   n_test=res.total, train_s=train_s, eval_s=eval_s, train_loss=losses)
        if args.extra_evals:
            for label, attack_ in (
                    ("fgsm", adv.FGSMConfig(eps=args.eval_eps)),
                    ("pgd50", adv.PGDConfig(eps=args.eval_eps, alpha=2.5 * args.eval_eps / 20,
                                            steps=50))):
                t0 = time.perf_counter()
                r = adv.robust_accuracy(model, test, attack=attack_)
                row[label] = r.robust
                print(f"{name}: {label} {r.robust:.4f} ({time.perf_counter() - t0:.0f}s)")
        if args.save_dir:
            os.makedirs(args.save_dir, exist_ok=True)
            deepseek.save(model.state_dict(),
                          os.path.join(args.save_dir, f"{name.split('-')[0].lower()}.safetensors"))
        rows.append(row)
    wall = time.perf_counter() - t_all

    print(f"\nPGD-{args.eval_steps} L-inf eps={args.eval_eps} alpha={args.eval_alpha} "
          f"random start, {rows[0]['n_test']} test images")
    print(f"| model | epochs | clean acc | PGD-{args.eval_steps} acc | train s | eval s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['epochs']} | {r['clean']:.4f} | {r['robust']:.4f} | "
              f"{r['train_s']:.0f} | {r['eval_s']:.0f} |")
    if args.extra_evals:
        print(f"| model | FGSM acc | PGD-50 (alpha {2.5 * args.eval_eps / 20:g}) acc |")
        print("| --- | --- | --- |")
        for r in rows:
            print(f"| {r['model']} | {r['fgsm']:.4f} | {r['pgd50']:.4f} |")
    print(f"wall time {wall:.0f}s ({platform.processor() or platform.machine()})")
    plain, robust = rows
    ok = robust["robust"] >= 0.70 and plain["robust"] <= 0.10
    print(f"targets (PGD-trained >= 0.70, plain near 0 (<= 0.10)): {'met' if ok else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), rows=rows, wall_s=wall, targets_met=ok), f, indent=1)


if __name__ == "__main__":
    main()
