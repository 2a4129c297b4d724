import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { jsonSerde } from "../../processors/runtime/serde";
import {
  ChangeLoggingStore,
  InMemoryKeyValueStore,
  LmdbKeyValueStore,
  type StoreBackend,
} from "../../processors/runtime/stores";

const serde = jsonSerde<{ n: number }>();
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const backends: Array<[string, () => StoreBackend<{ n: number }>]> = [
  ["memory", () => new InMemoryKeyValueStore("s")],
  [
    "lmdb",
    () => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-store-"));
      dirs.push(d);
      return new LmdbKeyValueStore("s", d, serde, "app-s-changelog");
    },
  ],
];

describe.each(backends)("%s store", (_name, make) => {
  test("get, put, delete, sorted range and all, count, clear", async () => {
    const s = make();
    for (const k of ["c", "a", "d", "b"]) s.put(k, { n: k.charCodeAt(0) });
    expect(s.get("a")).toEqual({ n: 97 });
    expect(s.get("zz")).toBeUndefined();
    s.delete("d");
    expect(s.all().map(([k]) => k)).toEqual(["a", "b", "c"]);
    expect(s.range("b", "c").map(([k]) => k)).toEqual(["b"]);
    expect(s.approximateNumEntries()).toBe(3);
    s.clear();
    expect(s.all()).toEqual([]);
    await s.close();
  });

  test("the change-logging wrapper logs the latest value per key once, deletes as tombstones", async () => {
    const logged = new ChangeLoggingStore(make(), "app-s-changelog", serde);
    logged.put("a", { n: 1 });
    logged.put("a", { n: 2 });
    logged.put("b", { n: 3 });
    logged.delete("b");
    const entries = logged.drainChangelog();
    expect(
      entries.map((e) => [e.key, e.value === null ? null : (JSON.parse(e.value.toString()) as unknown)]),
    ).toEqual([
      ["a", { n: 2 }],
      ["b", null],
    ]);
    expect(logged.drainChangelog()).toEqual([]);
    // Restoring applies values and tombstones without logging them again.
    await logged.restore("c", Buffer.from(JSON.stringify({ n: 9 })));
    await logged.restore("a", null);
    expect(logged.all()).toEqual([["c", { n: 9 }]]);
    expect(logged.dirtyCount).toBe(0);
    await logged.backend.close();
  });
});
