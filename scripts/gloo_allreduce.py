#!/usr/bin/env python3
"""gloo all-reduce peer baseline for `npm run bench:peers`.

torch.distributed, gloo backend, CPU, float32 sum, on 127.0.0.1 only:

    /usr/bin/python3 scripts/gloo_allreduce.py --ranks 4 --sizes 8,1MiB,64MiB --iters 10 --warmup 3

The parent starts N rank processes (this file, --child) with init_method tcp://127.0.0.1:PORT on a
free port. For each size each rank runs W untimed and K timed all_reduce calls, with a barrier
before each; it times its own call; the time of an iteration is the max over ranks (an all_reduce
MAX of the per-rank times at the end) and the row reports the median over timed iterations. Inputs
are small integers depending on rank and index, so the sum is exact and every element is checked.

Output: one JSON line on stdout
    {"impl": "gloo", "ranks": N, "rows": [{"bytes", "timeUs", "algbwGBps", "busbwGBps", "wrong"}]}
(nccl-tests definitions: algbw = bytes / time, busbw = algbw * 2(n-1)/n, GB = 1e9 bytes).
If torch cannot be imported: a JSON line with an "error" field, exit 3. Other failures: exit 1
(2 for usage, 124 for the global timeout). Every rank process is killed on exit, error, Ctrl-C
and timeout; ranks also die with the parent (PR_SET_PDEATHSIG).
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

PERIOD = 17


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r" % text)
    unit = (m.group(2) or "b").lower()
    mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(unit[0], 1)
    return int(m.group(1)) * mult


def parse_sizes(text):
    sizes = [parse_size(s) for s in text.split(",") if s.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes")
    for s in sizes:
        if s % 4:
            raise argparse.ArgumentTypeError("size %d is not a multiple of 4 (float32)" % s)
    return sizes


def parse_args(argv):
    p = argparse.ArgumentParser(description="gloo all-reduce baseline (float32 sum, CPU)")
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--sizes", type=parse_sizes, default=[8, 1048576, 67108864])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0, help="global timeout, seconds")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads per rank")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.ranks < 1 or a.iters < 1 or a.warmup < 0:
        p.error("--ranks and --iters must be >= 1, --warmup >= 0")
    return a


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def die_with_parent():
    """Linux: get SIGKILL when the parent dies, so no rank outlives the run."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def value(rank, i):
    """Input of `rank` at element `i`: a small integer, so any summation order is exact."""
    return ((i * 7 + rank * 3) % PERIOD) + rank + 1


def periodic(count, f):
    """float32 tensor t with t[i] = f(i % PERIOD), built without index arrays."""
    import torch

    base = torch.tensor([float(f(i)) for i in range(PERIOD)], dtype=torch.float32)
    reps = -(-count // PERIOD)
    return base.repeat(reps)[:count].clone() if count else torch.empty(0, dtype=torch.float32)


def child_main(a):
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports and cleans up
    die_with_parent()
    if os.getppid() == 1:
        sys.exit(1)
    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(a.threads)
    n, rank = a.ranks, a.rank
    dist.init_process_group(
        "gloo",
        init_method="tcp://127.0.0.1:%d" % a.port,
        rank=rank,
        world_size=n,
        timeout=datetime.timedelta(seconds=max(30.0, a.timeout)),
    )
    rows = []
    for nbytes in a.sizes:
        count = nbytes // 4
        template = periodic(count, lambda i: value(rank, i))
        expected = periodic(count, lambda i: sum(value(r, i) for r in range(n)))
        buf = torch.empty(count, dtype=torch.float32)
        times = []
        wrong = 0
        for i in range(a.warmup + a.iters):
            buf.copy_(template)
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            t1 = time.perf_counter()
            wrong += int((buf != expected).sum().item())
            if i >= a.warmup:
                times.append((t1 - t0) * 1e6)
        t = torch.tensor(times, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        w = torch.tensor([wrong], dtype=torch.int64)
        dist.all_reduce(w, op=dist.ReduceOp.SUM)
        per_iter = sorted(t.tolist())
        m = len(per_iter) // 2
        median = per_iter[m] if len(per_iter) % 2 else (per_iter[m - 1] + per_iter[m]) / 2
        algbw = nbytes / median / 1e3 if median > 0 else 0.0
        busbw = algbw * 2 * (n - 1) / n if n > 1 else 0.0
        rows.append(
            {"bytes": nbytes, "timeUs": median, "algbwGBps": algbw, "busbwGBps": busbw, "wrong": int(w.item())}
        )
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        emit({"impl": "gloo", "ranks": n, "torch": torch.__version__, "iters": a.iters, "warmup": a.warmup, "rows": rows})


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parent_main(a):
    try:
        import torch  # noqa: F401
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_gloo_available():
            raise ImportError("torch.distributed with gloo is not available in this build")
    except Exception as e:  # ImportError, or a broken install
        emit({"impl": "gloo", "ranks": a.ranks, "error": "torch not importable by %s: %s" % (sys.executable, e)})
        sys.exit(3)

    procs = []

    def kill_all():
        for p in procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=5)
            except Exception:
                pass

    def on_signal(signum, _frame):
        kill_all()
        sys.stderr.write("gloo_allreduce: interrupted\n")
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    port = free_port()
    env = dict(os.environ)
    env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    env.setdefault("OMP_NUM_THREADS", str(a.threads))
    base = [sys.executable, os.path.abspath(__file__), "--child", "--ranks", str(a.ranks),
            "--sizes", ",".join(str(s) for s in a.sizes), "--iters", str(a.iters), "--warmup", str(a.warmup),
            "--timeout", str(a.timeout), "--threads", str(a.threads), "--port", str(port)]
    deadline = time.monotonic() + a.timeout
    out0 = b""
    try:
        for r in range(a.ranks):
            procs.append(subprocess.Popen(base + ["--rank", str(r)], env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE if r == 0 else subprocess.DEVNULL))
        # rank 0 prints the result; read it while waiting for everyone
        try:
            out0, _ = procs[0].communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_all()
            sys.stderr.write("gloo_allreduce: global timeout of %g s reached; killed all ranks\n" % a.timeout)
            sys.exit(124)
        for p in procs[1:]:
            left = deadline - time.monotonic()
            try:
                p.wait(timeout=max(0.1, left))
            except subprocess.TimeoutExpired:
                kill_all()
                sys.stderr.write("gloo_allreduce: global timeout of %g s reached; killed all ranks\n" % a.timeout)
                sys.exit(124)
        codes = [p.returncode for p in procs]
    finally:
        kill_all()
    if any(c != 0 for c in codes):
        sys.stderr.write("gloo_allreduce: rank exit codes %s\n" % codes)
        sys.exit(1)
    line = out0.decode("utf-8", "replace").strip().splitlines()
    if not line:
        sys.stderr.write("gloo_allreduce: rank 0 printed no result\n")
        sys.exit(1)
    sys.stdout.write(line[-1] + "\n")


def main():
    a = parse_args(sys.argv[1:])
    if a.child:
        child_main(a)
    else:
        parent_main(a)


if __name__ == "__main__":
    main()
