/** docs/dispatch-and-tracking.md lists exactly the refusal and outcome codes the code defines. */
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_DISPATCH_CODES } from "../../processors/dispatch/codes";
import { DEFAULT_TRACKER_CODES } from "../../processors/tracker/config";

const doc = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "dispatch-and-tracking.md"), "utf8");

/** Rows `| \`id\` | \`code\` | …` of the doc's tables: id → code. */
function codeRows(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of doc.split("\n")) {
    const m = /^\|\s*`([A-Za-z-]+)`\s*\|\s*`([A-Za-z0-9-]+)`\s*\|/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

test("the dispatch refusal table and the tracker outcome table agree with the defaults", () => {
  const rows = codeRows();
  const expected = new Map<string, string>([
    ...Object.entries(DEFAULT_DISPATCH_CODES),
    ...Object.entries(DEFAULT_TRACKER_CODES),
  ]);
  expect([...rows.entries()].sort()).toEqual([...expected.entries()].sort());
});
