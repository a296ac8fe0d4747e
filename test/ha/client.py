#!/usr/bin/python3
"""test/ha/client.py: the load of a failover scenario.

Workers run what a till does against the cluster through one multi-host
connection string with target_session_attrs=read-write: checkouts
(calculate, then commit with the calculation, spending points half of the
time), refunds of a line of an earlier receipt, and manual holds released
again.  Each statement runs in its own transaction (autocommit), so a
commit's outcome is known exactly when its statement returns.

The unknown-outcome rule: when the connection breaks while a commit, refund,
hold or release is under way, its outcome is unknown; the worker reconnects
and sends the same request again with the same receipt id, refund id or
idempotency key until it gets an answer (the extension replays what was
written, or writes it now).  Such requests are counted as unknown, and as
resolved once answered.

A statement that gets no answer for --client-timeout seconds (a server
frozen with SIGSTOP keeps its sockets open, and no server-side timeout
fires) has its socket shut down by a watchdog thread, as a till's own
timeout would: its outcome is unknown too.

The client stops when the stop file appears and writes a JSON summary:
acknowledged receipts and refunds, unknown and resolved outcomes, counts,
and the longest time without any acknowledged write (unavailable_s).
"""
import argparse
import json
import os
import random
import socket
import sys
import threading
import time

import psycopg2
import psycopg2.errorcodes

BROKEN = (psycopg2.OperationalError, psycopg2.InterfaceError)
# the node is (or became) read-only, or is shutting down: try another one
RECONNECT_CODES = {
    psycopg2.errorcodes.READ_ONLY_SQL_TRANSACTION,
    psycopg2.errorcodes.ADMIN_SHUTDOWN,
    psycopg2.errorcodes.CRASH_SHUTDOWN,
    psycopg2.errorcodes.CANNOT_CONNECT_NOW,
    psycopg2.errorcodes.QUERY_CANCELED,
}


class Worker(threading.Thread):
    def __init__(self, n, args, shared):
        super().__init__(daemon=True)
        self.n = n
        self.args = args
        self.shared = shared
        self.rng = random.Random(args.seed * 1000 + n)
        self.conn = None
        self.count = 0
        self.busy_since = None  # when the statement under way was sent

    # -- connection ------------------------------------------------------
    def connect(self):
        while not self.shared["stop"].is_set():
            try:
                conn = psycopg2.connect(self.args.dsn, application_name="loyalty-ha-client")
                conn.autocommit = True
                with conn.cursor() as cur:
                    # a commit waiting for a standby that is gone must not hang
                    # the till: give up on the statement, the outcome is unknown
                    cur.execute("SET statement_timeout = '10s'")
                self.conn = conn
                return True
            except BROKEN:
                time.sleep(0.2)
        return False

    def drop(self):
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:
            pass
        self.conn = None

    def call(self, sql, params):
        """Run one statement: its first row, or None if the connection broke
        (outcome unknown); a refusal raises."""
        if self.conn is None and not self.connect():
            return None
        try:
            with self.conn.cursor() as cur:
                self.busy_since = time.monotonic()
                cur.execute(sql, params)
                row = cur.fetchone()
                if row is None:
                    raise RuntimeError("no row from: " + sql)
                return row
        except BROKEN:
            self.drop()
            return None
        except psycopg2.Error as e:
            if e.pgcode in RECONNECT_CODES:
                self.drop()
                return None
            raise
        finally:
            self.busy_since = None

    def stuck(self, limit):
        """Shut the socket of a statement unanswered for limit seconds."""
        since, conn = self.busy_since, self.conn
        if since is None or conn is None or time.monotonic() - since < limit:
            return False
        try:
            socket.socket(fileno=os.dup(conn.fileno())).shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    # -- the rule: the same request again until it is answered -------------
    def until_answered(self, kind, attempt):
        unknown = False
        while not self.shared["stop"].is_set() or unknown:
            try:
                result = attempt()
            except psycopg2.Error as e:
                # a refusal (not enough points, a line returned already):
                # the request is settled, nothing to retry
                self.shared["note"]("refused", kind, e.pgcode)
                if unknown:
                    self.shared["note"]("resolved")
                return ("error", e)
            if result is not None:
                if unknown:
                    self.shared["note"]("resolved")
                return ("ok", result)
            if not unknown:
                unknown = True
                self.shared["note"]("unknown")
            time.sleep(0.1)
        return ("stopped", None)

    # -- the operations --------------------------------------------------------
    def checkout(self):
        a = self.args
        rid = "%s-w%d-%d" % (a.prefix, self.n, self.count)
        lines = [{"line": i + 1, "sku": "SKU%d" % self.rng.randint(1, 20), "qty": self.rng.randint(1, 3),
                  "price": self.rng.randint(50, 3000)} for i in range(self.rng.randint(1, 3))]
        doc = {"program": "ha", "receipt_id": rid,
               "customer": {"card": str(a.card_base + self.rng.randint(1, a.customers))}, "lines": lines}
        if self.rng.random() < 0.5:
            doc["points"] = "max"
        doc = json.dumps(doc)

        def attempt():
            seen = self.call("SELECT loyalty.calculate(%s::jsonb)::text", (doc,))
            if seen is None:
                return None
            try:
                return self.call("SELECT loyalty.commit(%s::jsonb, %s::jsonb) ->> 'receipt_id'", (doc, seen[0]))
            except psycopg2.Error as e:
                if e.pgcode == psycopg2.errorcodes.SERIALIZATION_FAILURE:
                    return None  # the calculation moved meanwhile: calculate again
                raise

        status, _ = self.until_answered("commit", attempt)
        if status == "ok":
            self.shared["acked"]("receipt", rid)

    def refund(self):
        rid = self.shared["pick_receipt"](self.rng)
        if rid is None:
            return
        fid = "F-" + rid

        def attempt():
            return self.call("SELECT loyalty.refund('ha', %s, '[{\"line\": 1}]', %s) ->> 'status'", (rid, fid))

        status, r = self.until_answered("refund", attempt)
        if status == "ok":
            self.shared["acked"]("refund", rid + " " + fid)

    def hold(self):
        a = self.args
        card = str(a.card_base + self.rng.randint(1, a.customers))
        key = "H-%s-w%d-%d" % (a.prefix, self.n, self.count)

        def take():
            return self.call("SELECT loyalty.hold(c.id, 'bonus', 1, '5 minutes', idempotency_key => %s) "
                             "FROM loyalty.identifier i JOIN loyalty.customer c ON c.id = i.customer_id "
                             "WHERE i.kind = 'card' AND i.value = %s", (key, card))

        status, r = self.until_answered("hold", take)
        if status != "ok":
            return

        def give_back():
            return self.call("SELECT (loyalty.release(%s, %s)).version", (r[0], key + "-release"))

        status, _ = self.until_answered("release", give_back)
        if status == "ok":
            self.shared["acked"]("hold", key)

    def run(self):
        while not self.shared["stop"].is_set():
            self.count += 1
            x = self.rng.random()
            if x < 0.8:
                self.checkout()
            elif x < 0.9:
                self.refund()
            else:
                self.hold()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--prefix", required=True)
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--card-base", type=int, default=30000000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--client-timeout", type=float, default=5.0)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    lock = threading.Lock()
    acked = {"receipt": [], "refund": [], "hold": []}
    counts = {}
    writes = []  # times of acknowledged writes
    stop = threading.Event()

    def note(*what):
        key = ":".join(str(w) for w in what)
        with lock:
            counts[key] = counts.get(key, 0) + 1

    def ack(kind, ident):
        with lock:
            acked[kind].append(ident)
            writes.append(time.monotonic())

    def pick_receipt(rng):
        with lock:
            if not acked["receipt"]:
                return None
            return acked["receipt"][rng.randrange(len(acked["receipt"]))]

    shared = {"stop": stop, "note": note, "acked": ack, "pick_receipt": pick_receipt}
    start = time.monotonic()
    workers = [Worker(n, args, shared) for n in range(args.workers)]
    for w in workers:
        w.start()
    while not os.path.exists(args.stop_file):
        for w in workers:
            if w.stuck(args.client_timeout):
                note("client_timeout")
        time.sleep(0.1)
    stop.set()
    deadline = time.monotonic() + 120
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        for w in workers:
            if w.stuck(args.client_timeout):
                note("client_timeout")
        time.sleep(0.1)
    if any(w.is_alive() for w in workers):
        print("client: a worker never got its answer", file=sys.stderr)
        sys.exit(1)
    end = time.monotonic()

    points = [start] + sorted(writes) + [end]
    gap = max(b - a for a, b in zip(points, points[1:]))
    refunds = sorted(set(acked["refund"]))
    summary = {
        "receipts": sorted(set(acked["receipt"])),
        "refunds": refunds,
        "holds": len(acked["hold"]),
        "unknown": counts.get("unknown", 0),
        "resolved": counts.get("resolved", 0),
        "counts": counts,
        "unavailable_s": round(gap, 1),
        "seconds": round(end - start, 1),
    }
    with open(args.out, "w") as f:
        json.dump(summary, f)
    print("client: %d receipts, %d refunds, %d holds acknowledged; %d unknown, %d resolved; longest gap %.1f s"
          % (len(summary["receipts"]), len(refunds), summary["holds"], summary["unknown"], summary["resolved"], gap),
          file=sys.stderr)


if __name__ == "__main__":
    main()
