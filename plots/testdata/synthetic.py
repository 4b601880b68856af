#!/usr/bin/env python3
# Writes results.jsonl: SYNTHETIC TEST INPUT for the plots golden tests.
# Every number below was chosen by hand to exercise the tables, charts and
# report (repeats with and without a confidence interval, a skipped backend,
# a failed repeat, a missing meter, client-bound and noisy flags). None of it
# is a measurement and none of it may be quoted as one.
import json

ENV = {"kernel": "0.0.0-synthetic", "cpu_model": "Synthetic Test CPU (not a measurement)", "cpus": 2,
       "tsc_hz": 2.6e9, "tsc_source": "synthetic", "cycles_source": "tsc", "go_version": "go1.26.8",
       "git_rev": "synthetic", "hostname": "synthetic", "virtualized": True}
JITTER = [0.0, 0.01, -0.01, 0.02, -0.02, 0.005]   # repeat i scales values by 1+JITTER[i]
# label -> (cycles/op at 10k ops/s, syscalls/op outside, backend's own syscalls/op, p50 µs, p99 µs)
# (cycles/op is TSC-equivalent: core busy × 2.6 GHz; the process has 85% of core busy, the rest is outside it)
BASE = {"epoll": (26000, 1.9, 1.8, 60, 180), "uring": (24000, 0.52, 0.5, 55, 160),
        "uring-sqpoll": (21000, 0.004, 0.002, 40, 120), "dpdk": (52000, 0.0, 0.0, 25, 70),
        # the C baselines of the two kernel paths (c-X is the baseline of X)
        "c-epoll": (21000, 1.8, 1.8, 55, 165), "c-uring": (19500, 0.5, 0.5, 50, 150)}
# label -> share of the sampled non-idle time per category (sampler.Categories order); each sums to 1.
# cycles_breakdown[cat].cycles_per_op is share × the record's profile_cycles_per_op (its profile window's
# cycles per op, PROFILE_EFFECT off the cost window's), as the harness writes it.
PROFILE_EFFECT = -0.15
CATS = ["syscall", "sched", "net", "dev", "io_uring", "runtime", "app", "poll", "other"]
SHARES = {"epoll":        [.22, .08, .38, .12, 0, .06, .08, 0, .06],
          "uring":        [.06, .07, .40, .13, .14, .06, .08, 0, .06],
          "uring-sqpoll": [.01, .03, .40, .12, .10, .05, .07, .18, .04],
          "dpdk":         [0, .01, 0, 0, 0, .02, .05, .90, .02],
          "c-epoll":      [.26, .09, .43, .13, 0, 0, .03, 0, .06],
          "c-uring":      [.08, .08, .45, .14, .16, 0, .03, 0, .06]}
# label -> (data-path syscall names, share of the outside count per name); each sums to 1. Outside the
# data path: the Go runtime's futex and nanosleep (none for the C baselines; DPDK's count is 0).
BYNAME = {"epoll": (["epoll_pwait", "recvmmsg", "sendmmsg", "read", "write"],
                    {"epoll_pwait": .2, "read": .37, "write": .37, "futex": .04, "nanosleep": .02}),
          "uring": (["io_uring_enter"], {"io_uring_enter": .96, "futex": .03, "nanosleep": .01}),
          "uring-sqpoll": (["io_uring_enter"], {"io_uring_enter": .5, "futex": .3, "nanosleep": .2}),
          "dpdk": ([], {}),
          "c-epoll": (["epoll_wait", "recvmmsg", "sendmmsg", "read", "write"], {"epoll_wait": .2, "read": .4, "write": .4}),
          "c-uring": (["io_uring_enter"], {"io_uring_enter": 1.0})}
TIME = "2026-01-01T00:00:%02dZ"

recs, n = [], [0]

def rec(label, workload, proto, conns, depth, size, rate, repeat, status="ok", error="", **kw):
    # A C baseline is a backend of its own (its family is its name); the others are family-variant.
    fam, _, var = (label, "", "") if label.startswith("c-") else label.partition("-")
    n[0] += 1
    r = {"run": "synthetic-test-input", "trial": n[0], "repeat": repeat, "attempt": 1,
         "time": TIME % (n[0] % 60), "status": status, "backend": fam, "variant": var or "default",
         "workload": workload, "proto": proto, "topology": "veth", "service": "echo", "conns": conns,
         "depth": depth, "size": size, "rate_target": rate, "arrival": "constant" if rate else "",
         "cores": 1, "server_cpus": [1], "client_cpus": [0], "warmup_s": 1, "duration_s": 5, "env": ENV}
    if error:
        r["error"] = error
    if status != "ok":
        r.update({"ops": 0, "bytes": 0, "packets": None, "throughput_ops": 0, "throughput_gbps": 0,
                  "throughput_pps": None, "cycles_per_packet": None, "syscalls": None, "syscalls_per_op": None,
                  "backend_syscalls_per_op": None, "cpu_ns_per_packet": None, "busy_ns_per_packet": None,
                  "cycles_source": ""})
        recs.append(r)
        return
    cyc, sc, own, p50, p99 = BASE[label]
    j = 1 + JITTER[repeat % len(JITTER)]
    ops_s = rate if rate else kw.pop("closed_ops")
    dur = 5
    ops = int(ops_s * dur)
    load = 1 + (ops_s / 50000) * 0.6 if label != "dpdk" else 1
    cyc_op = cyc * j / (1 + ops_s / 20000) if label != "dpdk" else 2.6e9 / ops_s * j
    pkts = ops * 2
    busy_op = cyc_op / 2.6
    cpu_op = busy_op * 0.85
    eff = EFFECT[label] * (1 + 5 * JITTER[repeat % len(JITTER)])
    r.update({"ops": ops, "bytes": ops * size * 2, "packets": pkts, "packets_source": SNMP,
              "link_packets": pkts, "link_packets_source": "veth0 rx+tx skbs (a GSO/GRO aggregate counts once)",
              "throughput_ops": ops_s * j if not rate else ops_s, "throughput_gbps": ops_s * size * 2 * 8 / 1e9,
              "throughput_pps": pkts / dur,
              "lat_p50_us": p50 * load * j, "lat_p90_us": p99 * 0.6 * load * j, "lat_p99_us": p99 * load * j,
              "lat_p999_us": p99 * 2 * load * j, "lat_max_us": p99 * 4 * load * j, "lat_mean_us": p50 * 1.1 * load * j,
              "cpu_source": "cgroup", "busy_source": "timer_list", "outside_ns_per_op": busy_op - cpu_op,
              "steal_ns": 0, "noise_steal": 0.0,
              "cpu_ns": cpu_op * ops, "cpu_ns_per_op": cpu_op, "cpu_ns_per_packet": cpu_op / 2,
              "busy_ns": busy_op * ops, "busy_ns_per_op": busy_op, "busy_ns_per_packet": busy_op / 2,
              "server_busy": min(1.0, cyc_op * ops_s / 2.6e9), "client_busy": 0.4,
              "cycles": cyc_op * ops, "cycles_per_op": cyc_op, "cycles_per_packet": cyc_op / 2, "cycles_source": "tsc",
              "syscalls": int(sc * j * ops), "syscalls_per_op": sc * j, "syscalls_source": COUNT,
              "count_cycles_per_op": cyc_op * (1 + eff), "syscall_meter_effect": eff, "backend_syscalls_per_op": own * j,
              "errors": 0, "err_mismatch": 0, "err_reset": 0, "err_timeout": 0, "err_lost": 0, "err_late": 0,
              "lat_censored": 0, "late": 0, "unsent": 0,
              "client_bound": False, "noisy": False, "noise_other_cpu": 0.01, "noise_run_delay": 0.002})
    if not kw.pop("no_profile", False):
        r.update({"profile": "profiles/trial-%d.pb.gz" % n[0], "profile_event": "cpu-clock",
                  "profile_samples": int(cyc_op * ops / 2.6e9 * 1000), "noise_source": "samples",
                  "profile_cycles_per_op": cyc_op * (1 + PROFILE_EFFECT), "profile_effect": PROFILE_EFFECT,
                  "cycles_breakdown": {c: {"share": sh, "cycles_per_op": sh * cyc_op * (1 + PROFILE_EFFECT)}
                                       for c, sh in zip(CATS, SHARES[label]) if sh > 0}})
    path, shares = BYNAME[label]
    r.update({"syscalls_by_name": {k: sh * sc * j for k, sh in shares.items()}, "syscalls_data_path": path,
              # the line the harness writes (synthetic: not rendered by the plots)
              "syscalls_explained": "synthetic: outside %.2f/op by name" % (sc * j)})
    if label == "dpdk":
        # Its own count of the cycles of polls that found work: its core is always busy.
        r["backend_counters"] = {"busy_cycles": int(9000 * j * ops), "busy_packets": pkts}
    if kw.pop("curve", False):
        r["lat_curve"] = [{"p": p, "us": round(v * load * j, 3)} for p, v in
                          [(0, p50 * 0.4), (50, p50), (90, p99 * 0.6), (99, p99), (99.9, p99 * 2), (99.99, p99 * 3), (100, p99 * 4)]]
    if kw.pop("no_syscalls", False):
        r.update({"syscalls": None, "syscalls_per_op": None, "syscalls_note": "tracefs not mounted (synthetic)",
                  "syscalls_source": "", "count_cycles_per_op": None, "syscall_meter_effect": None,
                  "syscalls_by_name": None, "syscalls_data_path": None, "syscalls_explained": ""})
    r.update(kw)
    recs.append(r)

# syscall meter effect (counting window's cycles/op over the cost window's, − 1) before jitter
EFFECT = {"epoll": 0.04, "uring": 0.015, "uring-sqpoll": 0.002, "dpdk": 0.0, "c-epoll": 0.035, "c-uring": 0.013}
SNMP = "server namespace /proc/net/snmp: TCP segments + UDP datagrams, in + out"
COUNT = "raw_syscalls:sys_enter in a 1.0 s counting window after the cost window, same server"

# A: echo/tcp 64x4, open loop at three rates; 6 repeats at 20000 so it has a 95% interval.
# At 50000 ops/s epoll sent some requests late and left some unsent.
for rate, reps in [(10000, 3), (20000, 6), (50000, 3)]:
    for label in ["epoll", "uring", "uring-sqpoll"] + (["c-epoll", "c-uring"] if rate == 20000 else []):
        for i in range(reps):
            extra = {"late": 120, "unsent": 8} if (label == "epoll" and rate == 50000) else {}
            rec(label, "echo", "tcp", 64, 4, 64, rate, i, curve=(rate == 20000), **extra)
    rec("dpdk", "echo", "tcp", 64, 4, 64, rate, 0, status="skipped", error="no kernel TCP stack")
# B: echo/udp 16x1 at 20000 ops/s, every backend, 3 repeats.
# epoll lost 3 datagrams in repeat 1 (one answered after it was given up); dpdk counts its port's frames.
# The C baselines ran beside; uring-sqpoll's repeat 2 has no profile (its breakdown is over 2 repeats).
for label in ["epoll", "uring", "uring-sqpoll", "dpdk", "c-epoll", "c-uring"]:
    for i in range(3):
        extra = {}
        if label == "uring-sqpoll" and i == 2:
            extra["no_profile"] = True
        if label == "epoll" and i == 1:
            extra.update({"errors": 3, "err_lost": 3, "err_late": 1, "lat_censored": 3})
        if label == "dpdk":
            extra.update({"packets_source": "DPDK port statistics (rx+tx frames)", "link_packets": None,
                          "link_packets_source": ""})
        rec(label, "echo", "udp", 16, 1, 64, 20000, i, curve=True, **extra)
# M: echo/udp over memif (DPDK's generator, no kernel at all), dpdk alone, 3 repeats.
for i in range(3):
    rec("dpdk", "echo", "udp", 16, 1, 64, 20000, i, topology="memif",
        packets_source="DPDK port statistics (rx+tx frames)", link_packets=None, link_packets_source="")
# C: echo/tcp closed loop over connections, one repeat; flags, a failure and a missing meter.
CLOSED = {"epoll": [30000, 90000, 110000], "uring": [32000, 100000, 125000], "uring-sqpoll": [40000, 120000, 140000]}
for label, rates in CLOSED.items():
    for conns, ops_s in zip([1, 16, 64], rates):
        extra = {}
        if label == "uring-sqpoll" and conns == 64:
            extra["client_bound"] = True
        if label == "epoll" and conns == 16:
            extra.update({"noisy": True, "noise_other_cpu": 0.12})
        if label == "uring" and conns == 1:
            extra["no_syscalls"] = True
        if label == "uring":
            # Not root: /proc/stat's 10 ms busy, the threads' schedstat.
            extra.update({"busy_source": "proc_stat", "cpu_source": "schedstat"})
        rec(label, "echo", "tcp", conns, 1, 64, 0, 0, closed_ops=ops_s, **extra)
rec("uring", "echo", "tcp", 1, 1, 64, 0, 1, status="failed", error="server exited: signal: killed (synthetic)")

with open("results.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
