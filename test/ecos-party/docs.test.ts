/** docs/cos-parties.md lists every CoS Party check, in reporting order, with its default code. */
import * as fs from "node:fs";
import * as path from "node:path";
import { COS_PARTY_CHECK_IDS, DEFAULT_COS_PARTY_RESPONSE_CODES } from "../../processors/ecos-party/checks";

test("the checks-and-codes table agrees with checks.ts", () => {
  const text = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "cos-parties.md"), "utf8");
  const rows = text
    .split("\n")
    .map((l) =>
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    )
    .filter((cells) => cells.length === 4 && /^`[a-z-]+`$/.test(cells[0]!))
    .map((cells) => [cells[0]!.slice(1, -1), cells[3]!.replace(/`/g, "")]);
  expect(rows).toEqual(COS_PARTY_CHECK_IDS.map((id) => [id, DEFAULT_COS_PARTY_RESPONSE_CODES[id]]));
});
