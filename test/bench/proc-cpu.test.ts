/**
 * The benchmarks' machine-wide CPU accounting: /proc parsing (a command name with spaces and
 * parentheses, the machine's busy share) and a window over this very process (Linux: /proc).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseMachineStat, parseProcStat, pidFromFile, startCpuWindow } from "../../bench/proc-cpu";

test("a process's user + system time is read after the command name, whatever it holds", () => {
  const rest = "S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
  expect(parseProcStat(`42 (node) ${rest}`)).toBe(3250);
  expect(parseProcStat(`42 (a (weird) name) ${rest}`)).toBe(3250);
  expect(parseProcStat("42 node S 1")).toBeNull();
  expect(parseProcStat("42 (node) S 1 2")).toBeNull();
});

test("the machine's busy share counts everything but idle and iowait", () => {
  const a = parseMachineStat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n");
  const b = parseMachineStat("cpu  200 0 100 1000 100 0 0 0 0 0\n");
  expect(a).toEqual({ busy: 150, total: 1000 });
  expect(b).toEqual({ busy: 300, total: 1400 });
  expect((b!.busy - a!.busy) / (b!.total - a!.total)).toBeCloseTo(0.375);
  expect(parseMachineStat("intr 1 2 3")).toBeNull();
});

test("a pid file names a live process or nothing", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-pid-"));
  try {
    const file = path.join(dir, "x.pid");
    expect(pidFromFile(file)).toBeNull();
    fs.writeFileSync(file, `${process.pid}\n`);
    expect(pidFromFile(file)).toBe(process.pid);
    fs.writeFileSync(file, "not a pid");
    expect(pidFromFile(file)).toBeNull();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a window over a busy loop counts this process's CPU", () => {
  const w = startCpuWindow({ self: process.pid, gone: null });
  const until = Date.now() + 300;
  let x = 0;
  while (Date.now() < until) x += Math.sqrt(x + 1);
  const r = w.end();
  expect(x).toBeGreaterThan(0);
  expect(r.processMs["self"]).toBeGreaterThanOrEqual(200);
  expect(r.processMs["self"]).toBeLessThanOrEqual(r.wallMs * os.cpus().length + 20);
  expect(r.processMs["gone"]).toBeNaN();
  expect(r.machineBusyShare).toBeGreaterThan(0);
  expect(r.machineBusyShare).toBeLessThanOrEqual(1);
});
