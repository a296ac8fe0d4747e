#!/usr/bin/python3
"""test/pooled/client.py: tills behind pgbouncer in transaction mode.

Run by test/pooled/run.sh, which starts pgbouncer and prepares the database
loyalty_pooled: programmes north and south, tills pooled_till_north and
pooled_till_south (loyalty_cashier, each bound to its programme) with one
customer per client thread.  Each till runs several client connections
through the pool, which gives each till fewer server connections than it has
clients, so that every server connection serves many client transactions.
Each client commits checkouts (calculate, then commit, in one transaction,
distinct receipt ids) in a loop.  Meanwhile an admin on a direct connection
revokes north from its till, then binds it again:

- every checkout of the north till whose transaction began after the revoke
  returned is refused with 42501, on every server connection (including
  those that served the till before), and writes nothing;
- the south till goes on committing;
- every checkout of the north till begun after the grant commits.

Each change is made while a checkout of the north till is in flight: its
statement took its snapshot before the change, waits for a lock the admin
holds, and goes on once the change has committed.  That checkout may end
either way; the backend that ran it must not keep what its snapshot showed.

Then, on a pool of one server connection: SET LOCAL of a setting ends with
its transaction (the next client of the connection sees the default), while
a plain SET stays on the server connection for the next client (why pooled
clients use SET LOCAL); and a listener on a direct connection hears
loyalty_events of a checkout committed through the pool.

The clients use psycopg 3 with prepare_threshold=None, as
docs/tour-backend.md asks of a pooled client.  Prints "ok - ..." or
"not ok - ..." per check; exits non-zero if any fails.
"""
import os
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

POOL_PORT = int(os.environ["POOLED_PORT"])
DB = "loyalty_pooled"
CLIENTS = int(os.environ.get("POOLED_CLIENTS", "3"))      # per till
PHASE = float(os.environ.get("POOLED_PHASE_SECONDS", "2"))
TILLS = {"pooled_till_north": "north", "pooled_till_south": "south"}

failed = False


def check(name, good, detail=""):
    global failed
    print(("ok - " if good else "not ok - ") + name + ("" if good or not detail else ": " + detail))
    sys.stdout.flush()
    if not good:
        failed = True


def pooled(user, dbname=DB):
    """A client connection through pgbouncer, as docs/tour-backend.md says"""
    return psycopg.connect(host="127.0.0.1", port=POOL_PORT, dbname=dbname, user=user,
                           prepare_threshold=None, connect_timeout=10)


def direct():
    """A direct connection to the server, as the superuser (libpq variables)"""
    return psycopg.connect(dbname=DB, autocommit=True)


def receipt(program, card, rid):
    return {"program": program, "receipt_id": rid, "customer": {"card": card},
            "lines": [{"line": 1, "sku": "TEA", "qty": 2, "price": 120},
                      {"line": 2, "qty": 1, "price": 45}]}


# (till, began, ended, outcome: "ok" or the SQLSTATE, backend pid or None, receipt id)
results = []
results_lock = threading.Lock()
stop = threading.Event()


def till_client(till, client):
    program = TILLS[till]
    card = "%s%04d" % ("7001" if program == "north" else "7002", client)
    conn = pooled(till)
    n = 0
    while not stop.is_set():
        n += 1
        rid = "%s-%d-%d" % (till, client, n)
        r = receipt(program, card, rid)
        pid = None
        began = time.monotonic()
        try:
            with conn.transaction():
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                answer = conn.execute("SELECT loyalty.calculate(%s)", [Jsonb(r)]).fetchone()[0]
                status = conn.execute("SELECT loyalty.commit(%s, %s) -> 'commit' ->> 'status'",
                                      [Jsonb(r), Jsonb(answer)]).fetchone()[0]
            outcome = "ok" if status == "committed" else "status " + str(status)
        except psycopg.Error as e:
            outcome = e.sqlstate or type(e).__name__
        with results_lock:
            results.append((till, began, time.monotonic(), outcome, pid, rid))
        time.sleep(0.002)
    conn.close()


def in_flight(till, began, lock):
    """A checkout whose first statement (identify) takes its snapshot, then
    waits for the admin's lock"""
    program = TILLS[till]
    # a customer of its own (run.sh enrolls one more than there are clients)
    card = "%s%04d" % ("7001" if program == "north" else "7002", CLIENTS + 1)
    r = receipt(program, card, "%s-in-flight-%d" % (till, lock))
    conn = pooled(till)
    pid = None
    try:
        with conn.transaction():
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            began.set()
            conn.execute("WITH w AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%s))"
                         " SELECT loyalty.identify(%s, %s) FROM w",
                         [lock, program, r["customer"]["card"]]).fetchone()
            answer = conn.execute("SELECT loyalty.calculate(%s)", [Jsonb(r)]).fetchone()[0]
            conn.execute("SELECT loyalty.commit(%s, %s)", [Jsonb(r), Jsonb(answer)])
        outcome = "ok"
    except psycopg.Error as e:
        outcome = e.sqlstate or type(e).__name__
    with results_lock:
        results.append((till, 0.0, time.monotonic(), outcome, pid, r["receipt_id"]))
    conn.close()


def change(sql, lock):
    """Run sql as the admin, on a direct connection, while a checkout of the
    north till is in flight: its statement took its snapshot before the
    change and goes on after the change commits (a backend that served the
    till before, and serves it after).  Returns the result and when the
    change had returned."""
    admin = psycopg.connect(dbname=DB)
    monitor = direct()
    with admin.transaction():
        admin.execute("SELECT pg_advisory_xact_lock(%s)", [lock])
        began = threading.Event()
        t = threading.Thread(target=in_flight, args=("pooled_till_north", began, lock))
        t.start()
        began.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and monitor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
                [lock]).fetchone()[0] == 0:
            time.sleep(0.01)
        result = admin.execute(sql).fetchone()[0]
    changed_at = time.monotonic()
    t.join()
    admin.close()
    monitor.close()
    return result, changed_at


def phase(since):
    """Let the clients run for PHASE seconds, and until each till has
    finished a few checkouts begun since then (at most 30 s more)"""
    time.sleep(PHASE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with results_lock:
            if all(sum(1 for x in results if x[0] == till and x[1] > since) >= 5 for till in TILLS):
                return
        time.sleep(0.1)


def workload():
    threads = [threading.Thread(target=till_client, args=(till, c))
               for till in TILLS for c in range(1, CLIENTS + 1)]
    for t in threads:
        t.start()
    phase(0.0)
    revoke_began = time.monotonic()
    revoked, revoked_at = change("SELECT loyalty.revoke_program('north', 'pooled_till_north')", 4711)
    phase(revoked_at)
    grant_began = time.monotonic()
    granted, granted_at = change("SELECT loyalty.grant_program('north', 'pooled_till_north')", 4712)
    phase(granted_at)
    stop.set()
    for t in threads:
        t.join()
    admin = direct()

    check("the admin revoked and granted on a direct connection", revoked and granted)
    north = [x for x in results if x[0] == "pooled_till_north"]
    south = [x for x in results if x[0] == "pooled_till_south"]
    before = [x for x in north if x[2] < revoke_began]
    refused = [x for x in north if revoked_at < x[1] and x[2] < grant_began]
    after = [x for x in north if granted_at < x[1]]
    check("the north till committed before the revoke (%d checkouts)" % len(before),
          len(before) > 0 and all(x[3] == "ok" for x in before),
          str(sorted({x[3] for x in before})))
    check("every checkout of the north till begun after the revoke is refused with 42501 (%d)" % len(refused),
          len(refused) > 0 and all(x[3] == "42501" for x in refused),
          str(sorted({x[3] for x in refused})))
    check("the south till went on committing throughout (%d checkouts)" % len(south),
          len(south) > 0 and all(x[3] == "ok" for x in south)
          and any(revoked_at < x[1] and x[2] < grant_began for x in south),
          str(sorted({x[3] for x in south})))
    check("every checkout of the north till begun after the grant commits (%d)" % len(after),
          len(after) > 0 and all(x[3] == "ok" for x in after),
          str(sorted({x[3] for x in after})))
    others = sorted({x[3] for x in results if x[3] not in ("ok", "42501")})
    check("no other outcome (no 40001, 40P01, 42P05, 26000)", not others, str(others))

    # The server connections were shared, and those that served the north
    # till before the revoke refused it after.
    pids = {till: {x[4] for x in results if x[0] == till and x[4]} for till in TILLS}
    served_before = {x[4] for x in before}
    refused_on = {x[4] for x in refused if x[4]}
    check("each till's %d clients shared fewer server connections (%s)"
          % (CLIENTS, ", ".join("%s: %d" % (t, len(p)) for t, p in sorted(pids.items()))),
          all(0 < len(p) < CLIENTS for p in pids.values()))
    check("server connections that served the north till before the revoke refused it after",
          bool(served_before & refused_on),
          "before %s, refused on %s" % (sorted(served_before), sorted(refused_on)))

    # What was written: every committed checkout once, nothing of a refused one.
    ok_ids = {x[5] for x in results if x[3] == "ok"}
    refused_ids = [x[5] for x in results if x[3] == "42501"]
    stored = {r[0] for r in admin.execute("SELECT receipt_id FROM loyalty.receipt").fetchall()}
    check("every committed checkout is stored once (%d receipts)" % len(ok_ids), stored == ok_ids,
          "%d stored, %d committed" % (len(stored), len(ok_ids)))
    check("no refused checkout wrote a receipt (%d refused)" % len(refused_ids),
          not (stored & set(refused_ids)))
    admin.close()


def settings_and_listen():
    # loyalty_one: one server connection for every client of a till
    a = pooled("pooled_till_south", "loyalty_one")
    b = pooled("pooled_till_south", "loyalty_one")
    setting = "loyalty.search_time_budget"
    # the library is loaded by a call of the extension; its settings exist then
    with b.transaction():
        b.execute("SELECT loyalty.program_open(NULL)")
        pid_b, default = b.execute("SELECT pg_backend_pid(), current_setting(%s)", [setting]).fetchone()
    with a.transaction():
        a.execute("SET LOCAL loyalty.search_time_budget = 0.5")
        pid_a, inside = a.execute("SELECT pg_backend_pid(), current_setting(%s)", [setting]).fetchone()
        a.execute("SELECT loyalty.calculate(%s)", [Jsonb(receipt("south", "70020001", "pooled-budget"))])
    with b.transaction():
        pid_b2, next_one = b.execute("SELECT pg_backend_pid(), current_setting(%s)", [setting]).fetchone()
    check("SET LOCAL %s holds in its transaction (%s, default %s)" % (setting, inside, default),
          inside != default)
    check("SET LOCAL does not reach the next client of the server connection (%s)" % next_one,
          pid_a == pid_b == pid_b2 and next_one == default,
          "backends %s %s %s" % (pid_a, pid_b, pid_b2))
    with a.transaction():
        a.execute("SET loyalty.search_time_budget = 0.5")
    with b.transaction():
        pid_b3, leaked = b.execute("SELECT pg_backend_pid(), current_setting(%s)", [setting]).fetchone()
        b.execute("RESET loyalty.search_time_budget")
    check("a plain SET stays on the server connection for its next client (%s): pooled clients use SET LOCAL"
          % leaked, pid_b3 == pid_a and leaked == inside)
    a.close()
    b.close()

    # A listener on a direct connection hears a checkout made through the pool,
    # when the checkout's transaction turns notifications on (off by default).
    heard = []
    listener = direct()
    listener.add_notify_handler(lambda n: heard.append(n))
    listener.execute("LISTEN loyalty_events")
    c = pooled("pooled_till_south")
    with c.transaction():
        c.execute("SET LOCAL loyalty.notify_events = on")
        r = receipt("south", "70020001", "pooled-listened")
        answer = c.execute("SELECT loyalty.calculate(%s)", [Jsonb(r)]).fetchone()[0]
        c.execute("SELECT loyalty.commit(%s, %s)", [Jsonb(r), Jsonb(answer)])
    c.close()
    deadline = time.monotonic() + 5
    while not heard and time.monotonic() < deadline:
        listener.execute("SELECT 1")    # delivers what arrived to the handler
        time.sleep(0.05)
    check("a listener on a direct connection hears loyalty_events of a pooled checkout",
          any(n.channel == "loyalty_events" for n in heard))
    listener.close()


def main():
    try:
        workload()
        settings_and_listen()
    except Exception as e:    # a failure to connect or set up: one failed check
        check("the pooled workload ran", False, "%s: %s" % (type(e).__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
