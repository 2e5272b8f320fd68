"""Drives the checkout application with concurrent simulated visitors and prints what it
saw as JSON: every response's branch per visitor, what should have been counted and
recorded per branch, the requests shown the control (and why), and what /debug/session
found on the pooled server connections. t/022_python_app.pl compares it with abtest.

    /usr/bin/python3 load.py --url http://127.0.0.1:8000 --requests 10000 --clients 8

A visitor opens the checkout page (GET) and, with a chance that depends on the page,
buys (POST, an integer amount, 1 in 10 cards declined). Every HTTP request counts toward
--requests (or the run lasts --duration seconds).
"""

import argparse
import collections
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

DECLINED_CARD = "4000000000000002"
BUY_CHANCE = {"control": 0.30, "one_page": 0.36}


class Totals:
    """What all clients saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.status = collections.Counter()
        self.errors = collections.Counter()          # no HTTP answer: refused, reset, timed out
        self.degraded = collections.Counter()        # shown the control, by reason
        self.degraded_not_control = 0
        self.not_recorded = collections.Counter()
        self.exposures = collections.Counter()       # routed by abtest, per branch
        self.attempts = collections.Counter()        # checkouts recorded, per branch
        self.paid = collections.Counter()
        self.amount = collections.Counter()
        self.orders = collections.Counter()          # orders placed (200 POST), per branch seen
        self.order_amount = collections.Counter()
        self.branches = collections.defaultdict(set)  # visitor -> branches abtest gave
        self.debug = collections.Counter()
        self.debug_pairs = set()                     # (server pid, client key)
        self.timeline = collections.defaultdict(lambda: [0, 0, 0])   # second -> ok, degraded, failed
        self.latencies = []


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--requests", type=int, default=10000, help="HTTP requests in all (unless --duration)")
    p.add_argument("--duration", type=float, default=None, help="run this many seconds instead")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients, one keep-alive connection each")
    p.add_argument("--visitors", type=int, default=2000, help="distinct visitors, picked at random")
    p.add_argument("--prefix", default="v", help="visitor ids are PREFIX00001 ...")
    p.add_argument("--debug-share", type=float, default=0.0,
                   help="share of requests to /debug/session (the application needs ABTEST_DEBUG=1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=15.0, help="HTTP timeout per request, seconds")
    p.add_argument("--branches-out", help="write visitor -> branch (JSON) to this file")
    return p.parse_args(argv)


def client(args, number, totals, deadline, start):
    rng = random.Random(args.seed * 1000 + number)
    url = urllib.parse.urlsplit(args.url)
    conn = None

    def request(method, path, visitor=None, body=None):
        """One request; (status, headers, body) or None when no answer came."""
        nonlocal conn
        headers = {}
        if visitor:
            headers["Cookie"] = "visitor=" + visitor
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, response.headers, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                # A keep-alive connection the server closed while idle: once more.
                conn.close()
                conn = None
                if attempt == 2:
                    return error
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                conn = None
                return error

    def take():
        """Claims one request of the budget; False when the run is over."""
        with totals.lock:
            if args.duration is None:
                if totals.requests >= args.requests:
                    return False
            elif time.monotonic() >= deadline:
                return False
            totals.requests += 1
            return True

    def count(result, t0):
        second = int(time.monotonic() - start)
        with totals.lock:
            totals.latencies.append(time.monotonic() - t0)
            if not isinstance(result, tuple):
                totals.errors[type(result).__name__] += 1
                totals.timeline[second][2] += 1
                return None
            status, headers, _ = result
            totals.status[status] += 1
            degraded = headers.get("X-Abtest-Degraded")
            if degraded or status >= 500:
                totals.timeline[second][1 if status < 500 else 2] += 1
            else:
                totals.timeline[second][0] += 1
            return result

    while take():
        t0 = time.monotonic()
        if rng.random() < args.debug_share:
            result = count(request("GET", "/debug/session"), t0)
            if result and result[0] == 200:
                info = json.loads(result[2])
                with totals.lock:
                    totals.debug["requests"] += 1
                    if info["inherited_visitor"]:
                        totals.debug["inherited_visitor"] += 1
                    if info["prepared"]:
                        totals.debug["prepared_seen"] += 1
                    totals.debug_pairs.add((info["server_pid"], info["client_key"]))
            continue

        visitor = "%s%05d" % (args.prefix, rng.randrange(args.visitors))
        result = count(request("GET", "/checkout", visitor), t0)
        if not result or result[0] != 200:
            continue
        status, headers, _ = result
        branch = headers.get("X-Abtest-Branch")
        degraded = headers.get("X-Abtest-Degraded")
        with totals.lock:
            if degraded:
                totals.degraded[degraded] += 1
                totals.degraded_not_control += branch != "control"
            else:
                totals.exposures[branch] += 1
                totals.branches[visitor].add(branch)
        if rng.random() >= BUY_CHANCE.get(branch, 0.3) or not take():
            continue

        t0 = time.monotonic()
        amount = rng.randrange(5, 251)
        card = DECLINED_CARD if rng.random() < 0.1 else "4242424242424242"
        result = count(request("POST", "/checkout", visitor, {"amount": "%d.00" % amount, "card": card}), t0)
        if not result:
            continue
        status, headers, _ = result
        branch = headers.get("X-Abtest-Branch")
        degraded = headers.get("X-Abtest-Degraded")
        not_recorded = headers.get("X-Abtest-Not-Recorded")
        with totals.lock:
            if status == 200:
                totals.orders[branch] += 1
                totals.order_amount[branch] += amount
            if branch is None:
                continue
            if degraded:
                totals.degraded[degraded] += 1
                totals.degraded_not_control += branch != "control"
                continue
            totals.exposures[branch] += 1
            totals.branches[visitor].add(branch)
            if not_recorded:
                totals.not_recorded[not_recorded] += 1
            elif status in (200, 402):
                totals.attempts[branch] += 1
                if status == 200:
                    totals.paid[branch] += 1
                    totals.amount[branch] += amount
    if conn is not None:
        conn.close()


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    totals = Totals()
    start = time.monotonic()
    deadline = start + (args.duration or 0)
    threads = [threading.Thread(target=client, args=(args, n, totals, deadline, start))
               for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start

    conflicts = {v: sorted(b) for v, b in totals.branches.items() if len(b) > 1}
    servers = collections.defaultdict(set)
    for server_pid, client_key in totals.debug_pairs:
        servers[server_pid].add(client_key)
    latencies = sorted(totals.latencies)
    timeline = [totals.timeline[s] for s in range(int(elapsed) + 1)]
    summary = {
        "requests": totals.requests,
        "answered": sum(totals.status.values()),
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(totals.requests / elapsed, 1) if elapsed else None,
        "latency_ms": {"p50": round(latencies[len(latencies) // 2] * 1000, 2),
                       "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)} if latencies else {},
        "status": {str(k): v for k, v in sorted(totals.status.items())},
        "errors": dict(totals.errors),
        "degraded": dict(totals.degraded),
        "degraded_not_control": totals.degraded_not_control,
        "not_recorded": dict(totals.not_recorded),
        "exposures": dict(totals.exposures),
        "attempts": dict(totals.attempts),
        "paid": dict(totals.paid),
        "amount": dict(totals.amount),
        "orders": dict(totals.orders),
        "order_amount": dict(totals.order_amount),
        "visitors": len(totals.branches),
        "visitors_per_branch": dict(collections.Counter(next(iter(b)) for b in totals.branches.values()
                                                        if len(b) == 1)),
        "conflicts": len(conflicts),
        "conflict_examples": dict(list(conflicts.items())[:5]),
        "debug": dict(totals.debug),
        "debug_server_connections": len(servers),
        "debug_client_connections": len({c for _, c in totals.debug_pairs}),
        "debug_shared_server_connections": sum(1 for c in servers.values() if len(c) > 1),
        # per second of the run: [answered by abtest, shown the control, failed]
        "timeline": timeline,
    }
    if args.branches_out:
        with open(args.branches_out, "w") as out:
            json.dump({v: sorted(b) for v, b in totals.branches.items()}, out)
    json.dump(summary, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
