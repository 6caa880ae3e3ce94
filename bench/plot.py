#!/usr/bin/python3
"""Draw one PNG per restart configuration: per-request latency over time.

Run by bench/run.sh with Debian's /usr/bin/python3 and python3-matplotlib:

    /usr/bin/python3 bench/plot.py --results bench/results --out docs/benchmarks

For every configuration in RESULTS/restart/scenario.json it takes the run
named by plot_run (the median by restart-window max latency) and writes
OUT/restart-ID.png (900x350): a scatter of each request's latency (log
scale) at its completion time, coloured by whether an old or a new worker
PID answered (failed requests as red crosses), the restart window shaded
from the trigger to W, and the worker processes alive (sampled from /proc)
as a step line on the right axis. Stale restart-*.png files are removed.
"""

import argparse
import csv
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load_records(path, trigger_ms):
    old_pids = set()
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            start, end = float(r["start_ms"]), float(r["end_ms"])
            pid, kind = int(r["pid"]), r["kind"]
            rows.append((end / 1000.0, max(end - start, 0.01), pid, kind))
            if kind == "ok" and end < trigger_ms and pid:
                old_pids.add(pid)
    return rows, old_pids


def load_procs(path):
    if not os.path.exists(path):
        return [], []
    ts, ns = [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            ts.append(float(r["t_ms"]) / 1000.0)
            ns.append(int(r["processes"]))
    return ts, ns


def plot_config(results, cfg, out):
    idx = cfg.get("plot_run", -1)
    if idx is None or idx < 0 or idx >= len(cfg["runs"]):
        return None
    run = cfg["runs"][idx]
    rdir = os.path.join(results, run["dir"])
    with open(os.path.join(rdir, "report.json")) as f:
        rep = json.load(f)
    rs = rep.get("restart")
    if not rs:
        return None
    trig_ms = rs["trigger_start_ns"] / 1e6
    rows, old_pids = load_records(os.path.join(rdir, "records.csv"), trig_ms)
    ts, ns = load_procs(os.path.join(rdir, "procs.csv"))

    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=100)
    groups = {
        "old PIDs": ([], [], "#4a7ab5", "o"),
        "new PIDs": ([], [], "#e08a1e", "o"),
        "failed": ([], [], "#d62728", "x"),
    }
    for t, lat, pid, kind in rows:
        key = "failed" if kind != "ok" else ("old PIDs" if pid in old_pids else "new PIDs")
        groups[key][0].append(t)
        groups[key][1].append(lat)
    for label, (xs, ys, color, marker) in groups.items():
        if xs:
            ax.scatter(xs, ys, s=2 if marker == "o" else 12, c=color, marker=marker, linewidths=0.6 if marker == "x" else 0,
                       label=f"{label} ({len(xs)})", rasterized=True)
    ax.set_yscale("log")
    ax.set_xlabel("completion time (s)")
    ax.set_ylabel("latency (ms)")
    end_s = rep["elapsed_ns"] / 1e9
    ax.set_xlim(0, end_s)
    t0 = trig_ms / 1000.0
    w = rs["window_end_ns"] / 1e9
    ax.axvspan(t0, w, color="#f2e394", alpha=0.35, lw=0, label="restart window")
    ax.axvline(t0, color="black", lw=1, ls="--", label="restart triggered")
    if rs.get("done"):
        ax.axvline(t0 + rs["duration_ns"] / 1e9, color="#2ca02c", lw=1, ls=":", label="restart done")
    ax.grid(True, which="major", axis="y", alpha=0.3)

    if ts:
        ax2 = ax.twinx()
        ax2.step(ts, ns, where="post", color="#6b4c9a", lw=1.2, label="worker processes")
        ax2.set_ylim(0, max(ns) + 2)
        ax2.set_ylabel("worker processes", color="#6b4c9a")
        ax2.tick_params(axis="y", colors="#6b4c9a")
        ax2.yaxis.get_major_locator().set_params(integer=True)

    method = (cfg.get("method") or "").replace("`", "")
    failed = rep.get("failed", 0)
    gap = rep["longest_gap"]["length_ns"] / 1e9
    wmax = rs["window"]["max_ns"] / 1e6
    ax.set_title(f"{cfg['server']}: {method}\n{cfg['clients']} clients, failed {failed}, longest gap {gap:.2f} s, "
                 f"restart-window max {wmax:.0f} ms (run {run['run']})", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    if ts:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    # Below the axes, so it never hides a point.
    fig.legend(handles, labels, loc="lower center", fontsize=7, markerscale=3, ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = os.path.join(out, f"restart-{cfg['id']}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    shrink(path)
    return path


def shrink(path):
    """Re-save as a 64-colour palette PNG: a fraction of the size."""
    try:
        from PIL import Image
    except ImportError:
        return
    im = Image.open(path).convert("RGB")
    im.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    scen = os.path.join(args.results, "restart", "scenario.json")
    if not os.path.exists(scen):
        print("plot.py: no restart results; nothing to draw", file=sys.stderr)
        return
    with open(scen) as f:
        sr = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    drawn = set()
    for cfg in sr["configs"]:
        p = plot_config(args.results, cfg, args.out)
        if p:
            drawn.add(os.path.abspath(p))
            print(f"plot.py: wrote {p} ({os.path.getsize(p) // 1024} KiB)", file=sys.stderr)
    for p in glob.glob(os.path.join(args.out, "restart-*.png")):
        if os.path.abspath(p) not in drawn:
            os.remove(p)


if __name__ == "__main__":
    main()
