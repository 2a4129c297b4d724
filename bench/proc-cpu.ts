/**
 * Machine-wide CPU accounting for the benchmarks (Linux /proc): how much CPU each process of a run
 * used over a window (the pipeline, the simulators, the broker, the registry, the benchmark itself) and
 * how busy the whole machine was. On a shared 2-core machine this tells whether a latency figure is
 * the software's or the machine's limit. Where /proc is missing (not Linux) every figure is NaN.
 */
import * as fs from "node:fs";

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux on every common architecture). */
const TICKS_PER_S = 100;

/**
 * User + system CPU of a process in ms from the text of /proc/<pid>/stat, or null when it cannot be
 * read. The command name (field 2) may hold spaces and parentheses, so fields are counted after its
 * last ")".
 */
export function parseProcStat(text: string): number | null {
  const end = text.lastIndexOf(")");
  if (end < 0) return null;
  // After ")": field 3 (state) is index 0, so utime (field 14) is index 11 and stime (15) index 12.
  const fields = text
    .slice(end + 1)
    .trim()
    .split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / TICKS_PER_S;
}

/** Busy and total ticks of all CPUs from the text of /proc/stat (its first, "cpu " line). */
export function parseMachineStat(text: string): { busy: number; total: number } | null {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return null;
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** The pid in a pid file, or null when the file is missing or the process is gone. */
export function pidFromFile(file: string): number | null {
  const pid = Number((read(file) ?? "").trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return read(`/proc/${pid}/stat`) === null ? null : pid;
}

export interface CpuWindow {
  /** CPU ms per named process over the window (NaN when it could not be read at both ends). */
  readonly processMs: Readonly<Record<string, number>>;
  /** Share of the whole machine's CPU time that was busy over the window, 0..1 (NaN without /proc). */
  readonly machineBusyShare: number;
  readonly wallMs: number;
}

/** Starts a window now; `end()` closes it. Processes without a pid are reported as NaN. */
export function startCpuWindow(pids: Readonly<Record<string, number | null | undefined>>): {
  end(): CpuWindow;
} {
  const sample = (): {
    procs: Record<string, number | null>;
    machine: ReturnType<typeof parseMachineStat>;
  } => {
    const procs: Record<string, number | null> = {};
    for (const [name, pid] of Object.entries(pids)) {
      const text = pid ? read(`/proc/${pid}/stat`) : null;
      procs[name] = text === null ? null : parseProcStat(text);
    }
    const machine = read("/proc/stat");
    return { procs, machine: machine === null ? null : parseMachineStat(machine) };
  };
  const t0 = Date.now();
  const first = sample();
  return {
    end(): CpuWindow {
      const last = sample();
      const processMs: Record<string, number> = {};
      for (const name of Object.keys(pids)) {
        const a = first.procs[name];
        const b = last.procs[name];
        processMs[name] = a === null || a === undefined || b === null || b === undefined ? NaN : b - a;
      }
      const m0 = first.machine;
      const m1 = last.machine;
      const total = m0 && m1 ? m1.total - m0.total : 0;
      return {
        processMs,
        machineBusyShare: m0 && m1 && total > 0 ? (m1.busy - m0.busy) / total : NaN,
        wallMs: Date.now() - t0,
      };
    },
  };
}
