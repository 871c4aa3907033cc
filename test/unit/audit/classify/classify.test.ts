// Statement classification against pgAudit's class rules (pgaudit.c log_audit_event over
// PostgreSQL's GetCommandLogLevel), with command tags as PostgreSQL's CreateCommandTag gives them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Classifier, classifyStatements, type StatementInfo } from '../../../../src/audit/classify/index.js';

type Row = readonly [sql: string, cls: string, tag: string, classes?: readonly string[]];

const CORPUS: readonly Row[] = [
  // READ: SELECT, COPY TO, DECLARE CURSOR, PREPARE of a read
  ['SELECT * FROM public.accounts WHERE id = 1', 'READ', 'SELECT'],
  ['SELECT 1', 'READ', 'SELECT'],
  ['VALUES (1), (2)', 'READ', 'SELECT'],
  ['TABLE t', 'READ', 'SELECT'],
  ['SELECT * FROM t FOR UPDATE', 'READ', 'SELECT'],
  ['WITH x AS (SELECT 1) SELECT * FROM x', 'READ', 'SELECT'],
  ['COPY accounts TO STDOUT', 'READ', 'COPY'],
  ['COPY (SELECT * FROM accounts) TO STDOUT WITH (FORMAT csv)', 'READ', 'COPY'],
  ['DECLARE c CURSOR FOR SELECT * FROM t', 'READ', 'DECLARE CURSOR'],
  ['PREPARE q AS SELECT * FROM t WHERE id = $1', 'READ', 'PREPARE'],
  // WRITE: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM
  ['INSERT INTO t (a) VALUES (1)', 'WRITE', 'INSERT'],
  ['UPDATE s.t SET a = 1', 'WRITE', 'UPDATE'],
  ['DELETE FROM t WHERE a = 1', 'WRITE', 'DELETE'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'WRITE', 'MERGE'],
  ['TRUNCATE t', 'WRITE', 'TRUNCATE TABLE'],
  ['COPY t FROM STDIN', 'WRITE', 'COPY'],
  ['COPY t (a, b) FROM STDIN WITH (FORMAT csv)', 'WRITE', 'COPY'],
  ['INSERT INTO t SELECT * FROM s', 'WRITE', 'INSERT'],
  ['WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x', 'WRITE', 'INSERT'],
  ['WITH x AS (UPDATE t SET a = 1 RETURNING *) INSERT INTO u SELECT * FROM x', 'WRITE', 'INSERT'],
  ['PREPARE q AS DELETE FROM t WHERE id = $1', 'WRITE', 'PREPARE'],
  ['EXPLAIN ANALYZE INSERT INTO t VALUES (1)', 'WRITE', 'EXPLAIN'],
  ['EXPLAIN (ANALYZE true) DELETE FROM t', 'WRITE', 'EXPLAIN'],
  // a data-modifying CTE under a SELECT: pgAudit's session class is READ (the top operation)
  ['WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x', 'READ', 'SELECT', ['READ', 'WRITE']],
  ['COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT', 'READ', 'COPY', ['READ', 'WRITE']],
  // FUNCTION: DO blocks; function calls add FUNCTION to what they run in
  ['DO $$BEGIN PERFORM 1; END$$', 'FUNCTION', 'DO'],
  ["DO LANGUAGE plpgsql 'BEGIN NULL; END'", 'FUNCTION', 'DO'],
  ['SELECT my_func(1)', 'READ', 'SELECT', ['READ', 'FUNCTION']],
  ['SELECT app.f() FROM t', 'READ', 'SELECT', ['READ', 'FUNCTION']],
  ['UPDATE t SET a = app.next_value()', 'WRITE', 'UPDATE', ['WRITE', 'FUNCTION']],
  ["SELECT count(*), now(), pg_catalog.lower('A'), extract(year FROM now()) FROM t", 'READ', 'SELECT', ['READ']],
  ['CALL app.proc(1)', 'MISC', 'CALL', ['MISC', 'FUNCTION']],
  // ROLE: GRANT/REVOKE (privileges and roles), CREATE/ALTER/DROP ROLE, user mappings
  ['GRANT SELECT ON TABLE t TO bob', 'ROLE', 'GRANT'],
  ['REVOKE ALL ON SCHEMA s FROM PUBLIC', 'ROLE', 'REVOKE'],
  ['GRANT admins TO bob', 'ROLE', 'GRANT ROLE'],
  ['REVOKE admins FROM bob', 'ROLE', 'REVOKE ROLE'],
  ['GRANT EXECUTE ON FUNCTION f(int) TO bob', 'ROLE', 'GRANT'],
  ['CREATE ROLE bob LOGIN', 'ROLE', 'CREATE ROLE'],
  ['CREATE USER bob', 'ROLE', 'CREATE ROLE'],
  ['ALTER ROLE bob NOLOGIN', 'ROLE', 'ALTER ROLE'],
  ['ALTER ROLE bob SET search_path = app', 'ROLE', 'ALTER ROLE'],
  ['ALTER ROLE bob RENAME TO robert', 'ROLE', 'ALTER ROLE'],
  ['ALTER GROUP admins ADD USER bob', 'ROLE', 'ALTER ROLE'],
  ['DROP ROLE bob', 'ROLE', 'DROP ROLE'],
  ['DROP USER IF EXISTS bob', 'ROLE', 'DROP ROLE'],
  ['ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO bob', 'ROLE', 'ALTER DEFAULT PRIVILEGES'],
  ["CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob')", 'ROLE', 'CREATE USER MAPPING'],
  // DDL: everything else at log_statement level ddl
  ['CREATE TABLE app.t (id int PRIMARY KEY, ssn text)', 'DDL', 'CREATE TABLE'],
  ['ALTER TABLE t ADD COLUMN c int', 'DDL', 'ALTER TABLE'],
  ['ALTER TABLE t RENAME TO t3', 'DDL', 'ALTER TABLE'],
  ['ALTER TABLE t RENAME COLUMN a TO b', 'DDL', 'ALTER TABLE'],
  ['ALTER TABLE t OWNER TO bob', 'DDL', 'ALTER TABLE'],
  ['DROP TABLE a, s.b', 'DDL', 'DROP TABLE'],
  ['CREATE INDEX i ON t (a)', 'DDL', 'CREATE INDEX'],
  ['CREATE VIEW v AS SELECT * FROM t', 'DDL', 'CREATE VIEW'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", 'DDL', 'CREATE FUNCTION'],
  ["CREATE PROCEDURE p() LANGUAGE sql AS 'select 1'", 'DDL', 'CREATE PROCEDURE'],
  ['DROP FUNCTION f(int)', 'DDL', 'DROP FUNCTION'],
  ['CREATE SCHEMA app', 'DDL', 'CREATE SCHEMA'],
  ['CREATE TABLE t2 AS SELECT * FROM t', 'DDL', 'CREATE TABLE AS', ['DDL', 'READ']],
  ['SELECT * INTO t2 FROM t', 'DDL', 'SELECT INTO', ['DDL', 'READ']],
  ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'DDL', 'CREATE MATERIALIZED VIEW', ['DDL', 'READ']],
  ['REFRESH MATERIALIZED VIEW mv', 'DDL', 'REFRESH MATERIALIZED VIEW'],
  ["COMMENT ON TABLE t IS 'x'", 'DDL', 'COMMENT'],
  ['CREATE EXTENSION pgcrypto', 'DDL', 'CREATE EXTENSION'],
  ['CREATE DATABASE d', 'DDL', 'CREATE DATABASE'],
  ["ALTER SYSTEM SET work_mem = '64MB'", 'DDL', 'ALTER SYSTEM'],
  ['CLUSTER t USING i', 'DDL', 'CLUSTER'],
  ['DROP OWNED BY bob', 'DDL', 'DROP OWNED'],
  ['DROP USER MAPPING FOR bob SERVER s', 'DDL', 'DROP USER MAPPING'],
  ["CREATE TYPE mood AS ENUM ('sad', 'ok')", 'DDL', 'CREATE TYPE'],
  ['CREATE SEQUENCE s1', 'DDL', 'CREATE SEQUENCE'],
  ['CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION trf()', 'DDL', 'CREATE TRIGGER'],
  // MISC: the rest
  ['VACUUM t', 'MISC', 'VACUUM'],
  ['ANALYZE t', 'MISC', 'ANALYZE'],
  ['CHECKPOINT', 'MISC', 'CHECKPOINT'],
  ['DISCARD ALL', 'MISC', 'DISCARD ALL'],
  ['FETCH 10 FROM c', 'MISC', 'FETCH'],
  ['MOVE 1 IN c', 'MISC', 'MOVE'],
  ['CLOSE c', 'MISC', 'CLOSE CURSOR'],
  ['CLOSE ALL', 'MISC', 'CLOSE CURSOR ALL'],
  ['BEGIN', 'MISC', 'BEGIN'],
  ['START TRANSACTION READ ONLY', 'MISC', 'START TRANSACTION'],
  ['COMMIT', 'MISC', 'COMMIT'],
  ['ROLLBACK TO SAVEPOINT s', 'MISC', 'ROLLBACK'],
  ['SHOW work_mem', 'MISC', 'SHOW'],
  ['EXPLAIN SELECT 1', 'MISC', 'EXPLAIN'],
  ['EXPLAIN (ANALYZE) SELECT 1', 'MISC', 'EXPLAIN', ['MISC', 'READ']],
  ['EXPLAIN (ANALYZE off) DELETE FROM t', 'MISC', 'EXPLAIN'],
  ['EXECUTE q(1)', 'MISC', 'EXECUTE'],
  ['DEALLOCATE q', 'MISC', 'DEALLOCATE'],
  ['DEALLOCATE ALL', 'MISC', 'DEALLOCATE ALL'],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'MISC', 'LOCK TABLE'],
  ['LISTEN ch', 'MISC', 'LISTEN'],
  ["NOTIFY ch, 'x'", 'MISC', 'NOTIFY'],
  ['REINDEX TABLE t', 'MISC', 'REINDEX'],
  ['SET CONSTRAINTS ALL DEFERRED', 'MISC', 'SET CONSTRAINTS'],
  ["LOAD 'auto_explain'", 'MISC', 'LOAD'],
  // MISC_SET: SET and RESET in all their forms, local or not
  ['SET search_path = app', 'MISC_SET', 'SET'],
  ['SET LOCAL statement_timeout = 0', 'MISC_SET', 'SET'],
  ['SET SESSION work_mem TO DEFAULT', 'MISC_SET', 'SET'],
  ['SET ROLE admin', 'MISC_SET', 'SET'],
  ['SET SESSION AUTHORIZATION bob', 'MISC_SET', 'SET'],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'MISC_SET', 'SET'],
  ['RESET ALL', 'MISC_SET', 'RESET'],
  ['RESET search_path', 'MISC_SET', 'RESET'],
];

function one(sql: string, classifier = new Classifier()): StatementInfo {
  const infos = classifier.classify(sql);
  assert.equal(infos.length, 1, `one statement in ${sql}`);
  return infos[0]!;
}

describe('pgAudit classes and command tags', () => {
  for (const [sql, cls, tag, classes] of CORPUS) {
    it(`${cls} ${tag}: ${sql}`, () => {
      const info = one(sql);
      assert.equal(info.class, cls);
      assert.equal(info.commandTag, tag);
      assert.deepEqual(info.classes, classes ?? [cls]);
      assert.equal(info.text, sql);
      assert.equal(info.redactedText, sql);
      assert.equal(info.error, undefined);
    });
  }
});

describe('objects', () => {
  const objects = (sql: string) => one(sql).objects.map((o) => `${o.kind}:${o.name}`);
  it('relations, schema-qualified as written, CTE names left out', () => {
    assert.deepEqual(objects('SELECT * FROM public.accounts a JOIN orders o ON a.id = o.aid'), ['relation:public.accounts', 'relation:orders']);
    assert.deepEqual(objects('WITH x AS (SELECT * FROM t) SELECT * FROM x, s.x'), ['relation:s.x', 'relation:t']);
    assert.deepEqual(objects('INSERT INTO app.t SELECT * FROM s'), ['relation:app.t', 'relation:s']);
    assert.deepEqual(objects('DROP TABLE a, s.b'), ['relation:a', 'relation:s.b']);
    assert.deepEqual(objects('CREATE INDEX i ON app.t (a)'), ['relation:app.i', 'relation:app.t']);
  });
  it('functions called outside pg_catalog, functions targeted by DDL', () => {
    assert.deepEqual(objects("SELECT app.f(1), g(), count(*), pg_catalog.upper('a')"), ['function:app.f', 'function:g']);
    assert.deepEqual(objects('DROP FUNCTION app.f(int)'), ['function:app.f']);
    assert.deepEqual(objects('GRANT EXECUTE ON FUNCTION f(int) TO bob'), ['function:f', 'role:bob']);
  });
  it('roles, schemas, databases', () => {
    assert.deepEqual(objects('CREATE ROLE bob IN ROLE admins'), ['role:bob', 'role:admins']);
    assert.deepEqual(objects('GRANT admins TO bob'), ['role:admins', 'role:bob']);
    assert.deepEqual(objects('ALTER ROLE bob RENAME TO robert'), ['role:bob', 'role:robert']);
    assert.deepEqual(objects('REVOKE ALL ON SCHEMA s FROM PUBLIC'), ['schema:s']);
    assert.deepEqual(objects('GRANT SELECT ON ALL TABLES IN SCHEMA app TO bob'), ['schema:app', 'role:bob']);
    assert.deepEqual(objects('CREATE SCHEMA app AUTHORIZATION bob'), ['schema:app', 'role:bob']);
    assert.deepEqual(objects('DROP DATABASE d'), ['database:d']);
  });
});

describe('multi-statement strings', () => {
  it('one entry per statement, each with its own text, class and tag', () => {
    const infos = new Classifier().classify('BEGIN; UPDATE t SET a = 1;\n  SELECT * FROM t ; COMMIT;');
    assert.deepEqual(
      infos.map((i) => [i.class, i.commandTag, i.text]),
      [
        ['MISC', 'BEGIN', 'BEGIN'],
        ['WRITE', 'UPDATE', 'UPDATE t SET a = 1'],
        ['READ', 'SELECT', 'SELECT * FROM t'],
        ['MISC', 'COMMIT', 'COMMIT'],
      ],
    );
  });
  it('empty statements and comments give nothing', () => {
    const c = new Classifier();
    assert.deepEqual(c.classify(''), []);
    assert.deepEqual(c.classify(' ;; -- only a comment\n'), []);
    assert.deepEqual(
      c.classify('SELECT 1;;SELECT 2').map((i) => i.text),
      ['SELECT 1', 'SELECT 2'],
    );
  });
  it('multi-byte text is sliced on characters', () => {
    const infos = new Classifier().classify("SELECT 'é€😀' AS x; INSERT INTO t VALUES ('ü')");
    assert.deepEqual(
      infos.map((i) => i.text),
      ["SELECT 'é€😀' AS x", "INSERT INTO t VALUES ('ü')"],
    );
  });
});

describe('text the parser refuses', () => {
  it('gives one UNKNOWN entry with the parser error, never a throw', () => {
    const c = new Classifier();
    for (const sql of ['SELEC 1', 'SELECT 1; SELEC 2', "SELECT 'unterminated", 'SELECT $$x', '\u0000', ')))']) {
      const infos = c.classify(sql);
      assert.equal(infos.length, 1, sql);
      assert.equal(infos[0]!.class, 'UNKNOWN');
      assert.deepEqual(infos[0]!.classes, ['UNKNOWN']);
      assert.equal(infos[0]!.commandTag, '???');
      assert.ok(infos[0]!.error !== undefined && infos[0]!.error.length > 0, sql);
    }
    assert.match(c.classify('SELEC 1')[0]!.error!, /syntax error at or near "SELEC"/);
  });
  it('a text longer than the parse limit is not parsed', () => {
    const info = new Classifier({ maxParseLength: 100 }).classify(`SELECT '${'x'.repeat(200)}'`)[0]!;
    assert.equal(info.class, 'UNKNOWN');
    assert.equal(info.error, 'statement too long to classify');
  });
});

describe('password redaction (always)', () => {
  const redacted = (sql: string) => one(sql).redactedText;
  it('CREATE ROLE / CREATE USER ... PASSWORD', () => {
    assert.equal(redacted("CREATE ROLE bob LOGIN PASSWORD 'hunter2'"), "CREATE ROLE bob LOGIN PASSWORD '<redacted>'");
    assert.equal(
      redacted("CREATE USER bob WITH PASSWORD 'hunter2' VALID UNTIL '2030-01-01'"),
      "CREATE USER bob WITH PASSWORD '<redacted>' VALID UNTIL '2030-01-01'",
    );
  });
  it('ALTER ROLE / ALTER USER ... [ENCRYPTED] PASSWORD, in any quoting', () => {
    assert.equal(redacted("ALTER ROLE bob PASSWORD 'it''s secret'"), "ALTER ROLE bob PASSWORD '<redacted>'");
    assert.equal(
      redacted("ALTER USER bob WITH ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b' LOGIN"),
      "ALTER USER bob WITH ENCRYPTED PASSWORD '<redacted>' LOGIN",
    );
    assert.equal(redacted("ALTER ROLE bob PASSWORD E'se\\'cret'"), "ALTER ROLE bob PASSWORD '<redacted>'");
    assert.equal(redacted('ALTER ROLE bob PASSWORD $pw$hunter2$pw$'), "ALTER ROLE bob PASSWORD '<redacted>'");
    const two = new Classifier().classify("alter role bob password 'hunter2'; select 1");
    assert.deepEqual(
      two.map((i) => i.redactedText),
      ["alter role bob password '<redacted>'", 'select 1'],
    );
  });
  it('PASSWORD NULL is left as is; user mapping passwords are redacted', () => {
    assert.equal(redacted('CREATE ROLE bob PASSWORD NULL'), 'CREATE ROLE bob PASSWORD NULL');
    assert.equal(
      redacted("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'hunter2')"),
      "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '<redacted>')",
    );
  });
  it('a DO block that mentions a password has its body redacted', () => {
    assert.equal(redacted("DO $$BEGIN EXECUTE 'ALTER ROLE bob PASSWORD ''x'''; END$$"), "DO '<redacted>'");
  });
  it('options named like a password and connection strings with a password', () => {
    assert.equal(
      redacted("CREATE SERVER s FOREIGN DATA WRAPPER f OPTIONS (host 'h', password 'pw')"),
      "CREATE SERVER s FOREIGN DATA WRAPPER f OPTIONS (host 'h', password '<redacted>')",
    );
    assert.equal(
      redacted("CREATE SUBSCRIPTION sub CONNECTION 'host=x password=secret' PUBLICATION p"),
      "CREATE SUBSCRIPTION sub CONNECTION '<redacted>' PUBLICATION p",
    );
    assert.equal(redacted("SELECT dblink_connect('c', 'dbname=d password = s3')"), "SELECT dblink_connect('c', '<redacted>')");
    assert.equal(redacted("SELECT 'forgot password'"), "SELECT 'forgot password'");
  });
  it('a cached shape never hides a password in a literal', () => {
    const c = new Classifier();
    assert.equal(c.classify("SELECT dblink_connect('c', 'dbname=d')")[0]!.redactedText, "SELECT dblink_connect('c', 'dbname=d')");
    assert.equal(c.classify("SELECT dblink_connect('c', 'password=zz')")[0]!.redactedText, "SELECT dblink_connect('c', '<redacted>')");
    assert.equal(c.classify("DO 'BEGIN NULL; END'")[0]!.redactedText, "DO 'BEGIN NULL; END'");
    assert.equal(c.classify("DO 'BEGIN EXECUTE ''ALTER ROLE r PASSWORD ''''x''''''; END'")[0]!.redactedText, "DO '<redacted>'");
  });
  it('a column named like a password does not stop caching', () => {
    const c = new Classifier();
    c.classify("UPDATE users SET password_hash = 'a' WHERE id = 1");
    c.classify("UPDATE users SET password_hash = 'b' WHERE id = 2");
    assert.deepEqual([c.stats.misses, c.stats.hits], [1, 1]);
  });
  it('unparsable text keeps nothing after the word password', () => {
    const info = one("CREATE ROLE bob PASSWORD 'hunter2' BOGUS");
    assert.equal(info.class, 'UNKNOWN');
    assert.equal(info.redactedText, "CREATE ROLE bob PASSWORD '<redacted>'");
  });
  it('statements holding passwords are never cached', () => {
    const c = new Classifier();
    c.classify("ALTER ROLE bob PASSWORD 'a'");
    c.classify("ALTER ROLE bob PASSWORD 'b'");
    c.classify("CREATE ROLE x PASSWORD 'hunter2' BOGUS");
    assert.equal(c.stats.entries, 0);
    assert.equal(c.stats.hits, 0);
  });
});

describe('operator redaction', () => {
  const c = new Classifier({ redactColumns: ['SSN', 'card'], redactPatterns: [/^\d{4}-\d{4}-\d{4}-\d{4}$/] });
  const first = (sql: string) => c.classify(sql)[0]!;
  it('literals compared with or assigned to named columns', () => {
    assert.equal(first("SELECT * FROM p WHERE ssn = '123-45-6789'").redactedText, "SELECT * FROM p WHERE ssn = '<redacted>'");
    assert.equal(
      first("SELECT * FROM p WHERE p.ssn IN ('1', '2') AND id = 3").redactedText,
      "SELECT * FROM p WHERE p.ssn IN ('<redacted>', '<redacted>') AND id = 3",
    );
    assert.equal(first("UPDATE p SET ssn = '1', name = 'x' WHERE id = 7").redactedText, "UPDATE p SET ssn = '<redacted>', name = 'x' WHERE id = 7");
    assert.equal(
      first("INSERT INTO p (name, ssn) VALUES ('a', '1'), ('b', upper('2'))").redactedText,
      "INSERT INTO p (name, ssn) VALUES ('a', '<redacted>'), ('b', upper('<redacted>'))",
    );
    assert.equal(first("INSERT INTO p (ssn) SELECT '9'").redactedText, "INSERT INTO p (ssn) SELECT '<redacted>'");
    assert.equal(first('UPDATE p SET (ssn, age) = (5, 6)').redactedText, "UPDATE p SET (ssn, age) = ('<redacted>', 6)");
  });
  it('bound parameters of those columns are named for redaction', () => {
    assert.deepEqual(first('INSERT INTO p (name, ssn, card) VALUES ($1, $2, $3)').redactParams, [2, 3]);
    assert.deepEqual(first('SELECT * FROM p WHERE ssn = $1 OR name = $2').redactParams, [1]);
  });
  it('literals matching a pattern, anywhere', () => {
    assert.equal(
      first("SELECT * FROM pay WHERE note = '4111-1111-1111-1111' AND x = 'ok'").redactedText,
      "SELECT * FROM pay WHERE note = '<redacted>' AND x = 'ok'",
    );
    assert.equal(c.redactsValue('4111-1111-1111-1111'), true);
    assert.equal(c.redactsValue('4111'), false);
  });
  it('redaction holds for every text of a cached shape', () => {
    const k = new Classifier({ redactColumns: ['ssn'], redactPatterns: [/secret/] });
    for (let i = 0; i < 5; i++) {
      const info = k.classify(`UPDATE p SET ssn = '${i}${i}', note = '${i % 2 ? 'secret' : 'plain'}' WHERE id = ${i}`)[0]!;
      assert.equal(info.redactedText, `UPDATE p SET ssn = '<redacted>', note = ${i % 2 ? "'<redacted>'" : "'plain'"} WHERE id = ${i}`);
    }
    assert.equal(k.stats.misses, 1);
  });
});

describe('cache', () => {
  it('texts that differ only in plain literals are parsed once', () => {
    const c = new Classifier();
    const a = c.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1; SELECT 'x'")!;
    const b = c.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 123456; SELECT 'it''s'")!;
    assert.deepEqual(c.stats.misses, 1);
    assert.deepEqual(c.stats.hits, 1);
    assert.deepEqual(
      a.map((i) => i.text),
      ['SELECT abalance FROM pgbench_accounts WHERE aid = 1', "SELECT 'x'"],
    );
    assert.deepEqual(
      b.map((i) => i.text),
      ['SELECT abalance FROM pgbench_accounts WHERE aid = 123456', "SELECT 'it''s'"],
    );
    assert.deepEqual(b[0]!.objects, [{ kind: 'relation', name: 'pgbench_accounts' }]);
  });
  it('identical texts without literals return the same frozen result', () => {
    const c = new Classifier();
    const a = c.classify('SELECT * FROM t WHERE id = $1');
    assert.equal(c.classify('SELECT * FROM t WHERE id = $1'), a);
    assert.ok(Object.isFrozen(a));
  });
  it('is bounded by entries and bytes', () => {
    const c = new Classifier({ maxCacheEntries: 10 });
    for (let i = 0; i < 50; i++) c.classify(`SELECT * FROM t${i}`);
    assert.equal(c.stats.entries, 10);
    const d = new Classifier({ maxCacheBytes: 4000 });
    for (let i = 0; i < 50; i++) d.classify(`SELECT * FROM table_with_a_long_name_${i}`);
    assert.ok(d.stats.bytes <= 4000, `${d.stats.bytes}`);
    assert.ok(d.stats.entries > 0);
  });
  it('classifyStatements shares one classifier per options object', () => {
    const options = { redactColumns: ['ssn'] };
    assert.equal(classifyStatements("SELECT 1 WHERE ssn = 'a'", options)[0]!.redactedText, "SELECT 1 WHERE ssn = '<redacted>'");
    assert.equal(classifyStatements("SELECT 1 WHERE ssn = 'a'")[0]!.redactedText, "SELECT 1 WHERE ssn = 'a'");
  });
});
