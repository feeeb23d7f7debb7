import { existsSync } from "node:fs";

import { Client } from "pg";

import { startPostgres, type PostgresServer } from "../src/postgres";
import { isProcessAlive, listProcessTree } from "../src/process";

// Starts a real throwaway PostgreSQL cluster (Debian postgresql 15). As root, initdb and
// postgres run as the `postgres` system user.

describe("startPostgres", () => {
  let pg: PostgresServer | undefined;

  afterAll(async () => {
    await pg?.stop();
  });

  it("postgres – serves queries on the meshid_test database and leaves nothing behind on stop", async () => {
    pg = await startPostgres();
    expect(pg.host).toBe("127.0.0.1");
    expect(pg.database).toBe("meshid_test");
    expect(pg.connectionString).toBe(`postgresql://${pg.user}@127.0.0.1:${pg.port}/meshid_test`);

    const client = new Client({ connectionString: pg.connectionString });
    await client.connect();
    try {
      await client.query("CREATE TABLE t (id int primary key, name text)");
      await client.query("INSERT INTO t VALUES ($1, $2)", [1, "one"]);
      const { rows } = await client.query<{ db: string; name: string }>(
        "SELECT current_database() AS db, name FROM t WHERE id = 1",
      );
      expect(rows).toEqual([{ db: "meshid_test", name: "one" }]);
    } finally {
      await client.end();
    }

    const tree = await listProcessTree(pg.pid);
    expect(tree.length).toBeGreaterThan(1); // postmaster + background workers
    const dataDir = pg.dataDir;

    await pg.stop();
    await pg.stop(); // idempotent

    expect(tree.filter((p) => isProcessAlive(p.pid))).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });
});
