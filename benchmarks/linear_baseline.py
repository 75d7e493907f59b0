"""Does time matter? A linear classifier on time-summed event-count images.

Trains multinomial logistic regression (L2-regularised, full-batch L-BFGS in PyTorch) on the
time-summed, per-polarity event counts of each recording, downsampled to SIZE x SIZE x 2, of the
training split of a tonic-layout DVSGesture root, and reports its test accuracy:

- overall (11 classes);
- "cw/ccw within pair": on the test recordings of classes 3-6, whether the classifier prefers the
  right direction over the opposite direction of the same arm (3 vs 4, 5 vs 6). A circle traced
  either way covers the same pixels, so without time this is a coin flip (about 50 %);
- "pairs merged": the overall accuracy when mixing up cw and ccw of the same arm is forgiven,
  i.e. how well everything except the direction is recognised from the summed images;
- "cw/ccw binary, leave one user out": a two-class classifier per arm trained only on cw and ccw
  recordings, evaluated on each of the 29 users (both splits) with the other 28 users as training
  data; more recordings, so a tighter estimate of the within-pair accuracy.

Accuracies on the cw/ccw recordings come with a 95 % Wilson interval.

The L2 strength is chosen on training users 19-23 held out (trained on users 1-18), then the model
is refitted on all training users.

    python benchmarks/linear_baseline.py --data datasets/synthetic [--size 32] [--json out.json]

Results for the built-in synthetic set are in docs/synthetic_data.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CW_CCW_PAIRS = ((3, 4), (5, 6))
N_CLASSES = 11
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
VALIDATION_USERS = range(19, 24)


def count_images(root: str, *, train: bool, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-summed counts [N, 2 * size * size] (float64), labels [N], users [N], in sorted file order."""
    import tonic.datasets

    dataset = tonic.datasets.DVSGesture(root, train=train)
    order = np.argsort(dataset.data)
    scale = 128 // size
    images = np.zeros((len(order), 2 * size * size))
    for row, index in enumerate(order):
        events, _ = dataset[index]
        cell = (events["p"].astype(np.int64) * size + events["y"] // scale) * size + events["x"] // scale
        images[row] = np.bincount(cell, minlength=2 * size * size)
    labels = np.asarray(dataset.targets)[order]
    users = np.asarray(dataset.users)[order]
    return images, labels, users


def features(images: np.ndarray) -> np.ndarray:
    """Share of the recording's events per pixel and polarity (invariant to the event rate)."""
    return images / np.maximum(images.sum(axis=1, keepdims=True), 1)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float, n_classes: int = N_CLASSES, iterations: int = 300):
    """Multinomial logistic regression on standardised ``x``; returns a function x -> logits."""
    import torch

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
    xt = torch.tensor((x - mean) / std, dtype=torch.float64)
    yt = torch.tensor(y)
    weight = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ weight + bias, yt) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    w, b = weight.detach().numpy(), bias.detach().numpy()
    return lambda x_new: ((x_new - mean) / std) @ w + b


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(float(centre - half), 3), round(float(centre + half), 3))


def pair_leave_one_user_out(x: np.ndarray, labels: np.ndarray, users: np.ndarray, *, l2: float) -> dict:
    """Binary cw-vs-ccw classifiers per arm, each user tested by a model trained on the others."""
    hits = 0
    total = 0
    for cw, ccw in CW_CCW_PAIRS:
        in_pair = (labels == cw) | (labels == ccw)
        xp, yp, up = x[in_pair], (labels[in_pair] == ccw).astype(np.int64), users[in_pair]
        for user in np.unique(up):
            model = fit_logistic(xp[up != user], yp[up != user], l2=l2, n_classes=2)
            hits += int((model(xp[up == user]).argmax(axis=1) == yp[up == user]).sum())
            total += int((up == user).sum())
    return {"accuracy": hits / total, "recordings": total, "interval95": wilson(hits, total)}


def scores(logits: np.ndarray, labels: np.ndarray) -> dict:
    predicted = logits.argmax(axis=1)
    merged = predicted.copy()
    pair_hits = []
    for cw, ccw in CW_CCW_PAIRS:
        merged[predicted == ccw] = cw
        in_pair = (labels == cw) | (labels == ccw)
        prefers_cw = logits[in_pair, cw] > logits[in_pair, ccw]
        pair_hits.append(prefers_cw == (labels[in_pair] == cw))
    merged_labels = labels.copy()
    for cw, ccw in CW_CCW_PAIRS:
        merged_labels[labels == ccw] = cw
    pair_hits = np.concatenate(pair_hits)
    return {
        "accuracy": float((predicted == labels).mean()),
        "cw_ccw_within_pair_accuracy": float(pair_hits.mean()),
        "cw_ccw_recordings": int(pair_hits.size),
        "cw_ccw_interval95": wilson(int(pair_hits.sum()), int(pair_hits.size)),
        "pairs_merged_accuracy": float((merged == merged_labels).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="tonic DVSGesture root (the folder holding DVSGesture/)")
    parser.add_argument("--size", type=int, default=32, help="downsampled image size (divides 128)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.size <= 0 or 128 % args.size:
        parser.error("--size must divide 128")

    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    train_images, train_labels, train_users = count_images(args.data, train=True, size=args.size)
    test_images, test_labels, test_users = count_images(args.data, train=False, size=args.size)
    x_train, x_test = features(train_images), features(test_images)

    held_out = np.isin(train_users, VALIDATION_USERS)
    validation = {}
    for l2 in L2_GRID:
        model = fit_logistic(x_train[~held_out], train_labels[~held_out], l2=l2)
        validation[l2] = float((model(x_train[held_out]).argmax(axis=1) == train_labels[held_out]).mean())
    best_l2 = max(L2_GRID, key=lambda l2: (validation[l2], l2))
    model = fit_logistic(x_train, train_labels, l2=best_l2)

    result = {
        "data": str(args.data),
        "image": f"{args.size}x{args.size}x2 time-summed counts",
        "train_recordings": int(len(train_labels)),
        "test_recordings": int(len(test_labels)),
        "l2_validation_accuracy": {str(k): v for k, v in validation.items()},
        "l2": best_l2,
        "train": scores(model(x_train), train_labels),
        "test": scores(model(x_test), test_labels),
        "cw_ccw_binary_leave_one_user_out": pair_leave_one_user_out(
            np.concatenate([x_train, x_test]),
            np.concatenate([train_labels, test_labels]),
            np.concatenate([train_users, test_users]),
            l2=best_l2,
        ),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"linear classifier on {result['image']}: {result['train_recordings']} train, "
          f"{result['test_recordings']} test recordings, L2 {best_l2:g} (validation {validation[best_l2]:.3f})")
    for split in ("train", "test"):
        s = result[split]
        print(f"  {split:5s} accuracy {s['accuracy']:.3f}   cw/ccw within pair {s['cw_ccw_within_pair_accuracy']:.3f} "
              f"(n={s['cw_ccw_recordings']}, 95% {s['cw_ccw_interval95']})   pairs merged {s['pairs_merged_accuracy']:.3f}")
    loo = result["cw_ccw_binary_leave_one_user_out"]
    print(f"  cw/ccw binary, leave one user out: {loo['accuracy']:.3f} (n={loo['recordings']}, 95% {loo['interval95']})")
    print(f"  ({result['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
