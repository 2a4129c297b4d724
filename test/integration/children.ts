/**
 * Child processes started by a test file (apps that the kill tests SIGKILL) are killed when the file
 * ends, also when a test failed half-way, so no orphan keeps consuming or using CPU.
 */
import type { ChildProcess } from "node:child_process";

const children = new Set<ChildProcess>();

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.clear();
});

export function trackChild<C extends ChildProcess>(child: C): C {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}
