/** Result parsing shared by both targets, and literal rendering for the SQL the product builds. */
import {
  cellOf,
  checkIdentifier,
  parseTsvWithNamesAndTypes,
  rowObjects,
  stringLiteral,
  unescapeTsv,
} from "../../../processors/sinks/clickhouse/connection";

describe("TabSeparatedWithNamesAndTypes", () => {
  test("parses names, types (escaped on 18.16) and typed cells", () => {
    const text = [
      "n\ts\tt\tz\tbig\tf",
      "UInt64\tNullable(String)\tDateTime(\\'UTC\\')\tNullable(UInt8)\tUInt64\tFloat64",
      "3\ta\\tb\\nc\t2024-01-02 03:04:05\t\\N\t18446744073709551615\t33.3",
      "0\t\\N\t1970-01-01 00:00:00\t1\t1\tnan",
      "",
    ].join("\n");
    const r = parseTsvWithNamesAndTypes(text);
    expect(r.columns.map((c) => c.type)).toEqual([
      "UInt64",
      "Nullable(String)",
      "DateTime('UTC')",
      "Nullable(UInt8)",
      "UInt64",
      "Float64",
    ]);
    expect(r.rows).toEqual([
      [3, "a\tb\nc", "2024-01-02 03:04:05", null, "18446744073709551615", 33.3],
      [0, null, "1970-01-01 00:00:00", 1, 1, "nan"],
    ]);
    expect(rowObjects(r)[0]).toMatchObject({ n: 3, z: null });
  });

  test("an empty result has no rows", () => {
    expect(parseTsvWithNamesAndTypes("").rows).toEqual([]);
    expect(parseTsvWithNamesAndTypes("a\nString\n").rows).toEqual([]);
  });

  test("\\N is NULL only in a Nullable column", () => {
    expect(cellOf("\\N", "String")).toBe("N");
    expect(cellOf("\\N", "Nullable(String)")).toBeNull();
    expect(unescapeTsv("a\\\\b")).toBe("a\\b");
  });
});

describe("literals", () => {
  test("strings are quoted with backslash and quote escaped", () => {
    expect(stringLiteral("O'Brien \\ x")).toBe("'O\\'Brien \\\\ x'");
  });
  test("identifiers are plain names only", () => {
    expect(checkIdentifier("ecos_1")).toBe("ecos_1");
    expect(() => checkIdentifier("ecos; DROP")).toThrow(/not a plain ClickHouse identifier/);
  });
});
