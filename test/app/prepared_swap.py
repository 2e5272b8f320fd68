"""psycopg 3.1's automatic prepared statements through PgBouncer in transaction pooling
mode (before 1.21), step by step and deterministic: the PgBouncer database given in the
DSN must have pool_size=1, so that every client gets the same server connection.

Three clients, psycopg's default prepare_threshold (5), each step ordinary:
  1. client 2 runs "SELECT $1::int * 10" a sixth time: psycopg prepares it as _pg3_0;
  2. client 1 runs another query a sixth time, in a transaction: _pg3_0 is taken
     (42P05); the rollback resets psycopg's counts, and the twelfth time the query is
     prepared as _pg3_1;
  3. a transaction of client 1 fails: psycopg rolls back and sends DEALLOCATE ALL,
     which removes every prepared statement of the server connection, client 2's too;
  4. client 3 runs "SELECT $1::int + 1" a sixth time: prepared as _pg3_0;
  5. client 2 runs its query with 7: it executes _pg3_0, client 3's statement, and
     gets 8 instead of 70, without an error.
With a second argument "none" the clients connect with prepare_threshold=None, as the
README recommends: nothing is prepared and step 5 gives 70. Prints what each step gave,
as JSON. Used by t/022_python_app.pl.
"""

import json
import sys

import psycopg

dsn = sys.argv[1]
options = {"prepare_threshold": None} if sys.argv[2:] == ["none"] else {}
steps = {}
client1 = psycopg.connect(dsn, **options)        # transactions, as a pooled application
client2 = psycopg.connect(dsn, autocommit=True, **options)
client3 = psycopg.connect(dsn, autocommit=True, **options)


def prepared():
    """The prepared statements on the (one) server connection."""
    rows = client2.execute("SELECT name FROM pg_prepared_statements ORDER BY name", prepare=False)
    return [name for (name,) in rows]


client2.execute("DEALLOCATE ALL", prepare=False)   # a clean start

for i in range(6):
    client2.execute("SELECT %s::int * 10", (i,)).fetchone()
steps["1_prepared"] = prepared()

steps["2_errors"] = []
for i in range(12):
    try:
        with client1.transaction():
            client1.execute("SELECT %s::text || 'x'", (str(i),)).fetchone()
    except psycopg.Error as error:
        steps["2_errors"].append(error.sqlstate)
steps["2_prepared"] = prepared()

try:
    with client1.transaction():
        client1.execute("SELECT 1 / 0")
except psycopg.errors.DivisionByZero:
    pass
steps["3_prepared"] = prepared()

for i in range(6):
    client3.execute("SELECT %s::int + 1", (i,)).fetchone()
steps["4_prepared"] = prepared()

steps["5_expected"] = 70
try:
    steps["5_got"] = client2.execute("SELECT %s::int * 10", (7,)).fetchone()[0]
except psycopg.Error as error:
    steps["5_got"] = "error " + error.sqlstate
print(json.dumps(steps))
