/**
 * A min-heap of (time, RequestID): the tracker's index of pending deadlines. It lives in the processor,
 * not in a store: the store of tracked requests is the truth (each entry holds its one deadline), and
 * the heap is rebuilt from it in `init`, after a restart or rebalance restored the store. A stale
 * item (the request's deadline moved or the request is gone) is skipped when popped. A punctuation
 * then costs O(k log n) for k due deadlines, where a range scan of an in-memory store sorts every key.
 */
export class DeadlineHeap {
  private readonly times: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.times.length;
  }

  push(at: number, requestId: string): void {
    let i = this.times.length;
    this.times.push(at);
    this.ids.push(requestId);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= at) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** The earliest item if it is due at `now` (time <= now), removed; null otherwise. */
  popDue(now: number): { at: number; requestId: string } | null {
    if (this.times.length === 0 || this.times[0]! > now) return null;
    const out = { at: this.times[0]!, requestId: this.ids[0]! };
    const lastT = this.times.pop()!;
    const lastId = this.ids.pop()!;
    if (this.times.length > 0) {
      this.times[0] = lastT;
      this.ids[0] = lastId;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.times.length && this.times[l]! < this.times[m]!) m = l;
        if (r < this.times.length && this.times[r]! < this.times[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return out;
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.ids[a], this.ids[b]] = [this.ids[b]!, this.ids[a]!];
  }
}
