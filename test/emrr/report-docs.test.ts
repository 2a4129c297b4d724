/**
 * docs/reports.md against the code: each report's section lists exactly its columns, in order, and
 * every example query runs (on chDB holding the EMRR fixture and synthetic demo data).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPORTS } from "../../processors/emrr/reports";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { loadDemoData } from "./demo-data";
import { loadFixture } from "./golden";

const doc = fs.readFileSync(path.join(__dirname, "../../docs/reports.md"), "utf8");

/** The text of the section that starts with `heading` (up to the next heading of the same level or higher). */
function section(heading: RegExp): string {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return "";
  const level = /^#+/.exec(lines[start] ?? "")?.[0].length ?? 2;
  const end = lines.findIndex(
    (l, i) => i > start && /^#+ /.test(l) && (/^#+/.exec(l)?.[0].length ?? 9) <= level,
  );
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

describe("docs/reports.md", () => {
  test.each(REPORTS.map((r) => [r.ref, r] as const))(
    "%s: title, frequency and columns as in the code",
    (_ref, def) => {
      const text = section(new RegExp(`^### ${def.ref} — `));
      expect(text.split("\n")[0]).toBe(`### ${def.ref} — ${def.title} (${def.frequency})`);
      const names = [...text.matchAll(/^\| `([a-z_]+)`\s*\|/gm)].map((m) => m[1]);
      expect(names).toEqual(def.columns.map((c) => c.name));
    },
  );

  describe("example queries", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-docs-"));
    const conn = new ChdbConnection(dir);
    const blocks = [...section(/^## Example queries/).matchAll(/```sql\n([\s\S]*?)```/g)].map(
      (m) => m[1] as string,
    );

    beforeAll(async () => {
      await loadFixture(conn, "docs");
      await loadDemoData(conn, "docs", {
        attempts: 400,
        responses: 500,
        start: Date.UTC(2024, 2, 1),
        days: 30,
      });
      await conn.useDatabase("docs");
    }, 60_000);
    afterAll(async () => {
      await conn.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test("there are examples for each question the issue names", () => {
      expect(blocks.length).toBeGreaterThanOrEqual(8);
      expect(section(/^## Example queries/)).toMatch(
        /by device model[\s\S]*Failure reasons[\s\S]*percentiles and compliance by day, supplier and device type[\s\S]*Stale changes of supplier/,
      );
    });

    test("every example runs", async () => {
      for (const sql of blocks) {
        const result = await conn.query(sql).catch((err: unknown) => {
          throw new Error(
            `example failed: ${sql.slice(0, 60)}...: ${err instanceof Error ? err.message : String(err)}`,
          );
        });
        expect(result.columns.length).toBeGreaterThan(0);
      }
    });
  });
});
