# psycopg 3 through the gateway: the scenario of test/integration/clients-pooled.test.ts. Prints
# one JSON line. Server-side prepared statements (psycopg prepares a query on its 5th use,
# as `_pg3_N`) and a transaction.
import json
import os
import sys

import psycopg

conninfo = sys.argv[1]
password = os.environ['PGPASSWORD']
out = {}
with psycopg.connect(conninfo, password=password, prepare_threshold=2, autocommit=True) as conn:
    doubled = []
    for i in range(8):
        doubled.append(conn.execute('select %s::int * 2 as v', (i,)).fetchone()[0])
    out['doubled'] = doubled
    with conn.transaction():
        conn.execute('insert into client_rows (client) values (%s)', ('psycopg',))
        out['inTransaction'] = conn.execute("select count(*) from client_rows where client = 'psycopg'").fetchone()[0]
    out['user'] = conn.execute('select current_user').fetchone()[0]
    try:
        conn.execute('select 1/0')
    except psycopg.errors.DivisionByZero as e:
        out['error'] = e.sqlstate
    out['after'] = conn.execute('select 42').fetchone()[0]
print(json.dumps(out))
