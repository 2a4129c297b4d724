/**
 * The read_committed filter that replaces kafkajs 2.2.4's (deploy/patches/README.md): records of
 * aborted transactions never reach the application, whatever order the broker lists the aborted
 * transactions in; committed and non-transactional records always do. And the installed kafkajs
 * really uses it (the Kafka driver's start-up probe).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { assertReadCommittedFilter, readCommittedProbe } from "../../processors/runtime/kafkajs-check";

interface Msg {
  offset: string;
  key: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}
type Filter = (a: {
  messages: Msg[];
  abortedTransactions?: Array<{ producerId: string; firstOffset: string }>;
}) => Msg[];

const req = createRequire(__filename);
const filter = req("../../deploy/patches/filter-aborted-messages.cjs") as Filter;

const rec = (offset: number, pid: string, inTransaction = true): Msg => ({
  offset: String(offset),
  key: Buffer.from("k"),
  isControlRecord: false,
  batchContext: { producerId: pid, inTransaction },
});
const abort = (offset: number, pid: string): Msg => ({
  offset: String(offset),
  key: Buffer.from([0, 0, 0, 0]),
  isControlRecord: true,
  batchContext: { producerId: pid, inTransaction: true },
});
const commit = (offset: number, pid: string): Msg => ({
  ...abort(offset, pid),
  key: Buffer.from([0, 0, 0, 1]),
});
const data = (ms: Msg[]): number[] => ms.filter((m) => !m.isControlRecord).map((m) => Number(m.offset));

describe("read_committed filter (kafkajs patch)", () => {
  test("interleaved aborted transactions listed in marker order are all dropped", () => {
    // The case seen on the broker: producer 8 from 774, producer 6 at 783, 6 aborted at 784, 8 at 785.
    const messages = [
      rec(774, "8"),
      rec(780, "8"),
      commit(782, "2"),
      rec(783, "6"),
      abort(784, "6"),
      abort(785, "8"),
      rec(786, "8"),
    ];
    const out = filter({
      messages,
      abortedTransactions: [
        { producerId: "6", firstOffset: "783" },
        { producerId: "8", firstOffset: "774" },
      ],
    });
    expect(data(out)).toEqual([786]);
  });

  test("a producer's committed transactions around its aborted one are kept", () => {
    const messages = [
      rec(0, "5"),
      commit(1, "5"),
      rec(2, "5"),
      rec(3, "5"),
      abort(4, "5"),
      rec(5, "5"),
      commit(6, "5"),
    ];
    const out = filter({ messages, abortedTransactions: [{ producerId: "5", firstOffset: "2" }] });
    expect(data(out)).toEqual([0, 5]);
  });

  test("other producers' records inside an aborted transaction's span are kept", () => {
    const messages = [rec(10, "1"), rec(11, "2"), rec(12, "3", false), abort(13, "1"), commit(14, "2")];
    const out = filter({ messages, abortedTransactions: [{ producerId: "1", firstOffset: "10" }] });
    expect(data(out)).toEqual([11, 12]);
  });

  test("a fetch starting inside an aborted transaction drops its remaining records", () => {
    const messages = [rec(21, "4"), rec(22, "4"), abort(23, "4"), rec(24, "9")];
    const out = filter({ messages, abortedTransactions: [{ producerId: "4", firstOffset: "18" }] });
    expect(data(out)).toEqual([24]);
  });

  test("without aborted transactions everything passes", () => {
    const messages = [rec(0, "1"), commit(1, "1")];
    expect(filter({ messages, abortedTransactions: [] })).toBe(messages);
    expect(filter({ messages })).toBe(messages);
  });

  test("the installed kafkajs uses the patched filter (the driver's start-up probe)", () => {
    expect(readCommittedProbe()).toEqual(["4"]);
    expect(() => assertReadCommittedFilter()).not.toThrow();
  });

  test("applying the patches again changes nothing", () => {
    const target = req.resolve("kafkajs/src/consumer/filterAbortedMessages.js");
    const source = path.join(__dirname, "../../deploy/patches/filter-aborted-messages.cjs");
    (req("../../deploy/patches/apply.cjs") as { apply(): void }).apply();
    expect(fs.readFileSync(target, "utf8")).toBe(fs.readFileSync(source, "utf8"));
  });
});
