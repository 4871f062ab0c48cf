"""Summarises bench/gbdt/run.sh's raw lines: medians over the rounds per cell, ratios
peer / modeld (how many times faster modeld is), as a markdown table.

    /usr/bin/python3 bench/gbdt/report.py RAW.txt"""
import statistics
import sys
from collections import defaultdict

head, loads = [], []
cells = defaultdict(list)  # (model, who, batch, threads) -> [(cpu, wall)]
for line in open(sys.argv[1]):
    w = line.split()
    if not w:
        continue
    if w[0] in ("date", "rev", "cpu", "xgboost"):
        head.append(line.strip())
    elif w[0] == "round":
        loads.append(" ".join(w[3:]))
    elif len(w) == 10 and w[2] == "batch":
        cells[(w[0], w[1], int(w[3]), int(w[5]))].append((float(w[7]), float(w[9])))

print("\n".join("- " + h for h in head))
print(f"- rounds: {len(loads)}; load average (1/5/15 min) at each round's start: "
      + "; ".join(loads))
print()
for model, peer, title in (("xgbmodel", "xgboost", "XGBoost model (1000 trees, depth 8, 100 features)"),
                           ("lgbmodel", "lightgbm", "LightGBM model (1000 trees, 255 leaves, 100 features)")):
    keys = sorted({(b, t) for (m, who, b, t) in cells if m == model})
    if not keys:
        continue
    print(f"### {title}: us/row, medians of {len(loads)} rounds\n")
    print(f"| batch | threads | modeld CPU | {peer} CPU | **{peer} / modeld (CPU)** "
          f"| modeld wall | {peer} wall | {peer} / modeld (wall) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = {}
    for b, t in keys:
        row = []
        for who in ("modeld", peer):
            v = cells.get((model, who, b, t), [])
            med[(who, b, t)] = (statistics.median(c for c, _ in v) if v else float("nan"),
                                statistics.median(x for _, x in v) if v else float("nan"))
        mc, mw = med[("modeld", b, t)]
        pc, pw = med[(peer, b, t)]
        print(f"| {b} | {t} | {mc:.2f} | {pc:.2f} | **{pc / mc:.1f}x** | {mw:.2f} | {pw:.2f} "
              f"| {pw / mw:.1f}x |")
    for who in ("modeld", peer):
        if (who, 10000, 2) in med and (who, 10000, 1) in med:
            w1, w2 = med[(who, 10000, 1)][1], med[(who, 10000, 2)][1]
            print(f"\n{who}: 1 -> 2 threads at batch 10000, wall: {w1:.2f} -> {w2:.2f} us/row "
                  f"= **{w1 / w2:.2f}x**", end="")
    print("\n")
