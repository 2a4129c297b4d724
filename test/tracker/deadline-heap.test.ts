import { DeadlineHeap } from "../../processors/tracker/deadline-heap";

test("pops exactly the due deadlines, earliest first, against a sorted reference", () => {
  let seed = 7;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const heap = new DeadlineHeap();
  const reference: Array<[number, string]> = [];
  for (let i = 0; i < 500; i++) {
    const at = Math.floor(random() * 1000);
    heap.push(at, `r${i}`);
    reference.push([at, `r${i}`]);
  }
  reference.sort((a, b) => a[0] - b[0]);
  for (const now of [-1, 0, 250, 250, 999]) {
    const popped: number[] = [];
    for (let d = heap.popDue(now); d !== null; d = heap.popDue(now)) popped.push(d.at);
    const expected = reference.filter(([at]) => at <= now).map(([at]) => at);
    reference.splice(0, expected.length);
    expect(popped).toEqual(expected);
  }
  expect(heap.size).toBe(0);
});
