/**
 * Shared reporting for benchmark scenarios: one JSON line per figure, with the committed baseline
 * (bench/baseline.json, one section per scenario and variant) and the ratio value / baseline.
 * `--update-baseline` on a scenario's command line rewrites its section from the run.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export type Figures = Record<string, number>;

export const BASELINE_FILE = path.join(__dirname, "baseline.json");

type BaselineFile = Record<string, Record<string, Figures>>;

function readBaseline(file: string): BaselineFile {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as BaselineFile) : {};
}

/**
 * Prints `{"bench", <variantKey>: variant, "metric", "value", "baseline"?, "ratio"?}` for every figure
 * of every variant and, with `update`, stores them as the scenario's new baseline.
 */
export function reportFigures(
  bench: string,
  results: Record<string, Figures>,
  opts: { variantKey?: string; update?: boolean; file?: string } = {},
): void {
  const file = opts.file ?? BASELINE_FILE;
  const all = readBaseline(file);
  const base = all[bench] ?? {};
  const key = opts.variantKey ?? "variant";
  for (const [variant, figures] of Object.entries(results)) {
    for (const [metric, value] of Object.entries(figures)) {
      const b = base[variant]?.[metric];
      const line: Record<string, unknown> = { bench, [key]: variant, metric, value };
      if (b !== undefined && b !== 0) {
        line["baseline"] = b;
        line["ratio"] = Number((value / b).toFixed(3));
      }
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
  if (opts.update) {
    all[bench] = { ...base, ...results };
    fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
    process.stderr.write(`bench: baseline for ${bench} written to ${path.relative(process.cwd(), file)}\n`);
  }
}
