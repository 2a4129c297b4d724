/**
 * Start-up check that the installed kafkajs filters aborted transactions correctly for read_committed
 * consumers (deploy/patches/README.md). Exactly-once depends on it: without it, records of a
 * transaction aborted after another producer's interleaved transaction reach the application.
 */
import { createRequire } from "node:module";
import { EcosError } from "./errors";

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}

type BatchClass = new (
  topic: string,
  fetchedOffset: string,
  partitionData: {
    partition: number;
    highWatermark: string;
    abortedTransactions: Array<{ producerId: string; firstOffset: string }>;
    messages: FetchedMessage[];
  },
) => { messages: Array<{ offset: string }> };

const CONTROL_ABORT = Buffer.from([0, 0, 0, 0]);
const CONTROL_COMMIT = Buffer.from([0, 0, 0, 1]);

function record(offset: number, producerId: string): FetchedMessage {
  return {
    offset: String(offset),
    key: Buffer.from("k"),
    value: Buffer.from("v"),
    isControlRecord: false,
    batchContext: { producerId, inTransaction: true },
  };
}

function marker(offset: number, producerId: string, key: Buffer): FetchedMessage {
  return {
    offset: String(offset),
    key,
    value: null,
    isControlRecord: true,
    batchContext: { producerId, inTransaction: true },
  };
}

/**
 * The offsets kafkajs hands to a read_committed consumer for two interleaved aborted transactions
 * (producer 7 at 0, aborted at 3; producer 8 at 1, aborted at 2 — listed by the broker in marker
 * order) followed by a committed one (producer 9 at 4, committed at 5). Correct: only offset 4.
 */
export function readCommittedProbe(): string[] {
  const require = createRequire(__filename);
  const Batch = require("kafkajs/src/consumer/batch.js") as BatchClass;
  const batch = new Batch("probe", "0", {
    partition: 0,
    highWatermark: "6",
    abortedTransactions: [
      { producerId: "8", firstOffset: "1" },
      { producerId: "7", firstOffset: "0" },
    ],
    messages: [
      record(0, "7"),
      record(1, "8"),
      marker(2, "8", CONTROL_ABORT),
      marker(3, "7", CONTROL_ABORT),
      record(4, "9"),
      marker(5, "9", CONTROL_COMMIT),
    ],
  });
  return batch.messages.map((m) => m.offset);
}

/** Throws ECOS_CONFIG_INVALID when the installed kafkajs would return records of aborted transactions. */
export function assertReadCommittedFilter(): void {
  const got = readCommittedProbe();
  if (got.length !== 1 || got[0] !== "4") {
    throw new EcosError(
      "ECOS_CONFIG_INVALID",
      `the installed kafkajs returns records of aborted transactions to read_committed consumers (probe returned offsets ${got.join(", ") || "none"}, expected 4); run \`npm install\`, whose postinstall applies deploy/patches/`,
    );
  }
}
