/**
 * `ecos report --html`: the page renders in headless Chromium (Debian's `chromium`, or $ECOS_CHROMIUM).
 * The screenshot must exist, carry ink, and show the charts' colours: successes, failures, the two
 * SMETS generations' response-time histograms.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeHtmlReport } from "../../processors/emrr/html";
import { ChdbConnection } from "../../processors/sinks/clickhouse/chdb-connection";
import { loadDemoData } from "../emrr/demo-data";
import { loadFixture } from "../emrr/golden";
import { countColours, decodePng, inkShare } from "../helpers/png";

function chromium(): string {
  const candidates = [process.env["ECOS_CHROMIUM"], "chromium", "chromium-browser", "google-chrome"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  for (const c of candidates) {
    if (spawnSync(c, ["--version"], { encoding: "utf8" }).status === 0) return c;
  }
  throw new Error(
    "no Chromium found: install Debian's chromium (apt-get install -y chromium) or set ECOS_CHROMIUM",
  );
}

describe("the HTML report in headless Chromium", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-html-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("renders: a screenshot with the charts drawn", async () => {
    const conn = new ChdbConnection(path.join(dir, "clickhouse"));
    let file: string;
    try {
      await loadFixture(conn, "html");
      await loadDemoData(conn, "html", {
        attempts: 4000,
        responses: 6000,
        start: Date.UTC(2024, 2, 1),
        days: 30,
      });
      file = await writeHtmlReport({
        clickhouse: conn,
        database: "html",
        dir: path.join(dir, "page"),
        period: { from: new Date(Date.UTC(2024, 2, 1)), to: new Date(Date.UTC(2024, 3, 1)) },
        generatedAt: new Date(Date.UTC(2024, 3, 1, 6)),
      });
    } finally {
      await conn.close();
    }
    const shot = path.join(dir, "page.png");
    const r = spawnSync(
      chromium(),
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        `--user-data-dir=${path.join(dir, "profile")}`,
        "--hide-scrollbars",
        "--window-size=1000,2600",
        `--screenshot=${shot}`,
        `file://${file}`,
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect({ status: r.status, error: r.error?.message }).toEqual({ status: 0, error: undefined });
    expect(fs.existsSync(shot)).toBe(true);
    const img = decodePng(fs.readFileSync(shot));
    expect([img.width, img.height]).toEqual([1000, 2600]);
    expect(inkShare(img)).toBeGreaterThan(0.05);
    const colours = countColours(img, ["#2e7d32", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a"]);
    // Successes and failures per day, the cumulative line, SMETS1's histogram, the model bars.
    for (const [c, n] of Object.entries(colours))
      expect({ colour: c, enough: n > 200 }).toEqual({ colour: c, enough: true });
  }, 180_000);
});
