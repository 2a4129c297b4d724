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
    .map((l) => /^\| `([A-Z0-9_]+)` \|/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);

describe("docs agree with the code", () => {
  test("docs/errors.md lists exactly the error codes, with their retriable flags", () => {
    expect(tableColumn("docs/errors.md")).toEqual(Object.keys(ERROR_CODES));
    const text = fs.readFileSync(path.join(root, "docs/errors.md"), "utf8");
    for (const [code, { retriable }] of Object.entries(ERROR_CODES)) {
      expect(text).toContain(`| \`${code}\` | ${retriable ? "yes" : "no"} |`);
    }
  });
  test("docs/configuration.md lists exactly the configuration variables and defaults", () => {
    expect(tableColumn("docs/configuration.md")).toEqual(CONFIG_FIELDS.map((f) => f.env));
    const text = fs.readFileSync(path.join(root, "docs/configuration.md"), "utf8");
    for (const f of CONFIG_FIELDS) expect(text).toContain(`| \`${f.env}\` | \`${f.defaultValue}\` |`);
  });
});
