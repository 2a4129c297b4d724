/** The documents that list codes and settings must agree with the code that defines them. */
import * as fs from "node:fs";
import * as path from "node:path";
import { ERROR_CODES } from "../../processors/runtime/errors";
import { CONFIG_FIELDS } from "../../deploy/config/config";

const root = path.join(__dirname, "..", "..");
const tableColumn = (file: string): string[] =>
  fs
    .readFileSync(path.join(root, file), "utf8")
    .split("\n")
    .map((l) => /^\|\s*`([A-Z0-9_]+)`\s*\|/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);

/** Table rows keyed by their first (code) cell, with the remaining cells trimmed. */
function rowsOf(file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(root, file), "utf8").split("\n")) {
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    const key = /^`([A-Z0-9_]+)`$/.exec(cells[0] ?? "")?.[1];
    if (key) out.set(key, cells.slice(1));
  }
  return out;
}

describe("docs agree with the code", () => {
  test("docs/errors.md lists exactly the error codes, with their retriable flags", () => {
    expect(tableColumn("docs/errors.md")).toEqual(Object.keys(ERROR_CODES));
    const rows = rowsOf("docs/errors.md");
    for (const [code, { retriable }] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code)?.[0]).toBe(retriable ? "yes" : "no");
    }
  });
  test("docs/configuration.md lists exactly the configuration variables and defaults", () => {
    expect(tableColumn("docs/configuration.md")).toEqual(CONFIG_FIELDS.map((f) => f.env));
    const rows = rowsOf("docs/configuration.md");
    for (const f of CONFIG_FIELDS) expect(rows.get(f.env)?.[0]).toBe(`\`${f.defaultValue}\``);
  });
});
