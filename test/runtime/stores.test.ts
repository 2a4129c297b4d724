import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { jsonSerde } from "../../processors/runtime/serde";
import {
  ChangeLoggingStore,
  InMemoryKeyValueStore,
  LmdbKeyValueStore,
  PENDING_WRITES_LIMIT,
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

describe("LMDB store: writes held in memory and written in one transaction", () => {
  const at = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-store-"));
    dirs.push(d);
    return d;
  };
  const open = (dir: string) => new LmdbKeyValueStore("s", dir, serde, "app-s-changelog");

  test("every put and delete reaches the file, below and above the pending limit", async () => {
    const dir = at();
    const s = open(dir);
    const n = PENDING_WRITES_LIMIT + 5;
    for (let i = 0; i < n; i++) s.put(`k${String(i).padStart(5, "0")}`, { n: i });
    s.delete("k00003");
    s.put("k00004", { n: -4 });
    await s.close();
    const again = open(dir);
    const all = again.all();
    expect(all).toHaveLength(n - 1);
    expect(again.get("k00003")).toBeUndefined();
    expect(again.get("k00004")).toEqual({ n: -4 });
    expect(all[all.length - 1]).toEqual([`k${String(n - 1).padStart(5, "0")}`, { n: n - 1 }]);
    await again.close();
  });

  test("reads see pending writes over the file's values", async () => {
    const s = open(at());
    s.put("a", { n: 1 });
    s.put("b", { n: 2 });
    expect(s.all()).toHaveLength(2); // written to the file
    s.put("a", { n: 10 });
    s.delete("b");
    expect(s.get("a")).toEqual({ n: 10 });
    expect(s.get("b")).toBeUndefined();
    expect(s.range("a", "z")).toEqual([["a", { n: 10 }]]);
    expect(s.approximateNumEntries()).toBe(1);
    await s.close();
  });

  test("clear drops pending writes too", async () => {
    const dir = at();
    const s = open(dir);
    s.put("a", { n: 1 });
    s.clear();
    expect(s.get("a")).toBeUndefined();
    await s.close();
    const again = open(dir);
    expect(again.all()).toEqual([]);
    await again.close();
  });
});
