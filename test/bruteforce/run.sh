#!/usr/bin/env bash
# Runs the brute force of loyalty.calculate (test/bruteforce/bruteforce.py) against the
# throwaway server, which must be running (test/server.sh start).  The seed is
# LOYALTY_TEST_SEED, else taken from the clock; the program prints it first, so that a run
# can be repeated.  Further arguments go to bruteforce.py (--catalogues, --receipts, ...).
# The exit status is bruteforce.py's: 0 when every check passed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
if [ ! -f tmp/server.env ]; then
    echo "not ok - no tmp/server.env: start the server with test/server.sh start" >&2
    exit 2
fi
. tmp/server.env
seed=${LOYALTY_TEST_SEED:-$(( $(date +%s%N) / 1000 % 1000000007 ))}
py=
for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c 'import psycopg' 2>/dev/null; then
        py=$candidate
        break
    fi
done
if [ -z "$py" ]; then
    echo "not ok - no python3 with psycopg (version 3)" >&2
    exit 2
fi
exec "$py" test/bruteforce/bruteforce.py --seed "$seed" "$@"
