/**
 * A min-heap of timed events: earliest `at` first, and among equal times the one scheduled first
 * (so answers scheduled for the same millisecond leave in arrival order). The simulators' clock is
 * whatever `now` the caller passes; nothing here reads the wall clock.
 */
export class TimerQueue<T> {
  private readonly heap: Array<{ at: number; seq: number; value: T }> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, value: T): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, value });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  /** Time of the earliest event, or null when empty. */
  peekAt(): number | null {
    return this.heap[0]?.at ?? null;
  }

  /** Removes and returns the earliest event if it is due at `now` or before. */
  popDue(now: number): { at: number; value: T } | null {
    const h = this.heap;
    const top = h[0];
    if (top === undefined || top.at > now) return null;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(l, m)) m = l;
        if (r < h.length && this.less(r, m)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return { at: top.at, value: top.value };
  }

  /** Every event still queued, in no particular order (for counting and shutdown summaries). */
  values(): T[] {
    return this.heap.map((e) => e.value);
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
}
