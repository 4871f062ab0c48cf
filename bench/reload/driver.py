#!/usr/bin/python3
"""Helpers for bench/reload/run.sh (loopback only, standard library only).

  driver.py publish --addr H:P --repo DIR --model M --src DIR --stage DIR --mode rename|ready
                    --first-version V --count N --body JSON [--path P] [--gap-s S] [--timeout-s S]
      publishes versions V..V+N-1 of M, one at a time. rename: copy the files of --src into
      STAGE/<v>/ (same filesystem), then rename(2) it to REPO/M/<v>. ready: mkdir REPO/M/<v>,
      copy the files in place, then create REPO/M/<v>/READY. t0 is taken right before the
      rename / the READY creation; then --body is POSTed to --path (default
      /v1/models/M:predict; a transformer takes /v1/models/M:generate) in a tight loop on one
      keep-alive connection until an answer's "model" says "version": v (t1). Prints one JSON line per publish:
      detect_ms = t1 - t0, polls (count, slowest round trip, how many over 5 ms), non-200 answers, versions seen, and the load time modeld
      itself recorded (delta of modeld_model_load_duration_seconds_sum for M). After each
      publish the previous version folder is removed and it waits --gap-s before the next.

  driver.py reload --addr H:P --model M --token-file F --interval-s S --out FILE
      POST /v1/models/M:reload (bearer token) every S seconds (start to start; back to back
      when a reload takes longer) until SIGTERM; one line per call in FILE:
      "<start offset s> <http code> <duration ms> <start, CLOCK_MONOTONIC s>".

  driver.py probe --addr H:P --path P --body JSON --seconds S --out FILE
      one keep-alive connection, POST P back to back for S seconds; one line per request in
      FILE: "<start, CLOCK_MONOTONIC s> <round trip ms> <http code>" (to line up with reload).
"""
import argparse, http.client, json, os, re, shutil, signal, sys, time


def conn(addr, timeout=10):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def request(c, method, path, body=None, headers=None):
    h = dict(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r.read()


def load_sum(addr, model):
    c = conn(addr)
    try:
        _, text = request(c, "GET", "/metrics")
    finally:
        c.close()
    pat = re.compile(r'^modeld_model_load_duration_seconds_(sum|count)\{[^}]*model="%s"[^}]*\} (\S+)$' % re.escape(model))
    out = {"sum": 0.0, "count": 0.0}
    for line in text.decode().splitlines():
        m = pat.match(line)
        if m:
            out[m.group(1)] += float(m.group(2))
    return out


def publish(a):
    body = a.body.encode()
    path = a.path or f"/v1/models/{a.model}:predict"
    mdir = os.path.join(a.repo, a.model)
    files = sorted(os.listdir(a.src))
    c = conn(a.addr)
    for i in range(a.count):
        v = a.first_version + i
        before = load_sum(a.addr, a.model)
        if a.mode == "rename":
            stage = os.path.join(a.stage, str(v))
            os.makedirs(stage)
            for f in files:
                shutil.copyfile(os.path.join(a.src, f), os.path.join(stage, f))
            t0 = time.monotonic()
            os.rename(stage, os.path.join(mdir, str(v)))
        else:
            vdir = os.path.join(mdir, str(v))
            os.makedirs(vdir)
            for f in files:
                shutil.copyfile(os.path.join(a.src, f), os.path.join(vdir, f))
            t0 = time.monotonic()
            open(os.path.join(vdir, "READY"), "w").close()
        polls, bad, seen, t1, slow, worst = 0, {}, set(), None, 0, 0.0
        while time.monotonic() - t0 < a.timeout_s:
            tp = time.monotonic()
            try:
                code, resp = request(c, "POST", path, body)
                rtt = time.monotonic() - tp
                worst = max(worst, rtt)
                slow += rtt > 0.005
            except (OSError, http.client.HTTPException) as e:
                bad[type(e).__name__] = bad.get(type(e).__name__, 0) + 1
                c.close()
                c = conn(a.addr)
                continue
            polls += 1
            if code != 200:
                bad[str(code)] = bad.get(str(code), 0) + 1
                continue
            got = json.loads(resp)["model"]["version"]
            seen.add(got)
            if got == v:
                t1 = time.monotonic()
                break
        after = load_sum(a.addr, a.model)
        loads = after["count"] - before["count"]
        rec = {"model": a.model, "mode": a.mode, "version": v,
               "detect_ms": None if t1 is None else round((t1 - t0) * 1000, 2),
               "polls": polls, "max_poll_ms": round(worst * 1000, 2), "polls_over_5ms": slow,
               "non_200": bad, "versions_seen": sorted(seen),
               "loads": loads,
               "load_ms": round((after["sum"] - before["sum"]) * 1000 / loads, 2) if loads else None}
        print(json.dumps(rec), flush=True)
        if t1 is None:
            print(f"version {v} of {a.model} not served within {a.timeout_s} s", file=sys.stderr)
            return 1
        old = os.path.join(mdir, str(v - 1))
        if os.path.isdir(old):
            shutil.rmtree(old)
        time.sleep(a.gap_s)
    c.close()
    return 0


def reload(a):
    token = open(a.token_file).read().strip()
    hdr = {"Authorization": f"Bearer {token}"}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    out = open(a.out, "w", buffering=1)
    t_start = time.monotonic()
    while not stop:
        t0 = time.monotonic()
        c = conn(a.addr, timeout=120)
        try:
            code, _ = request(c, "POST", f"/v1/models/{a.model}:reload", b"", hdr)
        except (OSError, http.client.HTTPException):
            code = 0
        finally:
            c.close()
        t1 = time.monotonic()
        out.write(f"{t0 - t_start:.3f} {code} {(t1 - t0) * 1000:.1f} {t0:.6f}\n")
        rest = a.interval_s - (t1 - t0)
        while rest > 0 and not stop:
            time.sleep(min(rest, 0.05))
            rest = a.interval_s - (time.monotonic() - t0)
    return 0


def probe(a):
    c = conn(a.addr)
    body = a.body.encode()
    out = open(a.out, "w")
    end = time.monotonic() + a.seconds
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        try:
            code, _ = request(c, "POST", a.path, body)
        except (OSError, http.client.HTTPException):
            code = 0
            c.close()
            c = conn(a.addr)
        out.write(f"{t0:.6f} {(time.monotonic() - t0) * 1000:.3f} {code}\n")
    out.close()
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("publish")
    for k in ("addr", "repo", "model", "src", "stage", "body"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--mode", choices=("rename", "ready"), required=True)
    p.add_argument("--path", default=None)
    p.add_argument("--first-version", type=int, required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--gap-s", type=float, default=1.0)
    p.add_argument("--timeout-s", type=float, default=60.0)
    r = sub.add_parser("reload")
    for k in ("addr", "model", "token_file", "out"):
        r.add_argument("--" + k.replace("_", "-"), dest=k, required=True)
    r.add_argument("--interval-s", type=float, default=1.5)
    q = sub.add_parser("probe")
    for k in ("addr", "path", "body", "out"):
        q.add_argument("--" + k, required=True)
    q.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    return {"publish": publish, "reload": reload, "probe": probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
