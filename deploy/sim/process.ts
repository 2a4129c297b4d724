/**
 * The simulators as a Kafka process: the far end of the command path. A plain kafkajs consumer reads
 * device.commands and s1sp.requests, hands each record to the fleet or the S1SP core at the wall-clock
 * time, and a timer queue produces every DeviceResponse to device.responses when its simulated time
 * comes (Kafka timestamp = answeredAt). It is not a topology: the simulators are outside the DCC.
 *
 * Durability: the consumer does not auto-commit. Every `flushEveryMs` the process writes the state
 * file (deploy/sim/state-file.ts) and only then commits the offsets of the records already acted on,
 * so a device's anti-replay floor never goes back: a command redelivered after a crash is either
 * acted on for the first time or refused as a replay, as a real device would. Answers scheduled but
 * not yet produced when the process stops are lost (the WAN lost them; the tracker times them out).
 * Without a state file the fleet starts afresh each time (floors at 0) — tests only.
 */
import { Kafka, logLevel, type Consumer, type Producer } from "kafkajs";
import type { DeviceCommand, DeviceResponse, S1spRequest } from "../../processors/cos/records";
import type { CosSerdes } from "../../processors/cos/serdes";
import { EcosError } from "../../processors/runtime/errors";
import type { Logger } from "../../processors/runtime/logger";
import { partitionForKey } from "../../processors/runtime/partitioner";
import type { Serde } from "../../processors/runtime/serde";
import type { DeviceFleet } from "./fleet";
import type { S1spSimulator } from "./s1sp";
import { encodeState, saveStateFile } from "./state-file";

export interface SimTopics {
  readonly deviceCommands: string;
  readonly s1spRequests: string;
  readonly deviceResponses: string;
}

export type SimSerdes = Pick<CosSerdes, "deviceCommand" | "s1spRequest" | "deviceResponse">;

export interface SimProcessOptions {
  readonly brokers: readonly string[];
  readonly topics: SimTopics;
  readonly serdes: SimSerdes;
  /** Consumer group of the simulators. */
  readonly groupId: string;
  readonly fleet: DeviceFleet;
  readonly s1sp: S1spSimulator;
  /** Seed recorded in the state file (a file of another seed is refused at start). */
  readonly seed: string;
  /** State file; null keeps the state in memory only. */
  readonly stateFile: string | null;
  readonly logger: Logger;
  /** Read the topics from the beginning when the group has no committed offset (default: latest). */
  readonly fromBeginning?: boolean;
  /** Create missing topics with this many partitions (default: expect them to exist). */
  readonly createTopics?: { readonly partitions: number; readonly replicationFactor: number };
  readonly flushEveryMs?: number;
  readonly progressEveryMs?: number;
  /** The clock (default Date.now). */
  readonly now?: () => number;
}

export interface SimSummary {
  readonly devices: number;
  readonly s1spDevices: number;
  readonly deviceCommands: number;
  readonly s1spRequests: number;
  readonly undecodable: number;
  readonly responsesProduced: number;
  readonly produceFailures: number;
  /** Answers scheduled but not produced when the process stopped. */
  readonly unsentAtStop: number;
  readonly device: DeviceFleet["stats"];
  readonly s1sp: S1spSimulator["stats"];
}

/** Longest single wait of the answer timer (future-dated executions may be years away). */
const MAX_TIMER_MS = 1000;

export class SimulatorProcess {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> = Promise.resolve();
  /** Offsets acted on and not yet committed: `${topic}\0${partition}` → next offset. */
  private readonly toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
  private dirty = false;
  private flushing = false;
  private stopping = false;
  private readonly partitions = new Map<string, number>();
  private counts = { deviceCommands: 0, s1spRequests: 0, undecodable: 0, produced: 0, produceFailures: 0 };

  constructor(private readonly o: SimProcessOptions) {
    this.now = o.now ?? Date.now;
    this.kafka = new Kafka({
      clientId: `${o.groupId}-sim`,
      brokers: [...o.brokers],
      logLevel: logLevel.NOTHING,
    });
  }

  async start(): Promise<void> {
    const { topics, serdes } = this.o;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const wanted = [topics.deviceCommands, topics.s1spRequests, topics.deviceResponses];
      if (this.o.createTopics) {
        const existing = new Set(await admin.listTopics());
        const missing = wanted.filter((t) => !existing.has(t));
        if (missing.length > 0)
          await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((topic) => ({
              topic,
              numPartitions: this.o.createTopics!.partitions,
              replicationFactor: this.o.createTopics!.replicationFactor,
            })),
          });
      }
      const meta = await admin.fetchTopicMetadata({ topics: [topics.deviceResponses] });
      this.partitions.set(topics.deviceResponses, meta.topics[0]?.partitions.length ?? 1);
    } finally {
      await admin.disconnect();
    }
    await serdes.deviceResponse.prepare?.(topics.deviceResponses);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    const consumer = this.kafka.consumer({ groupId: this.o.groupId, sessionTimeout: 10_000 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({
      topics: [topics.deviceCommands, topics.s1spRequests],
      fromBeginning: this.o.fromBeginning ?? false,
    });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const batch = payload.batch;
        for (const m of batch.messages) {
          if (!payload.isRunning() || payload.isStale()) break;
          // A retriable failure (registry down) throws out of the batch: kafkajs fetches again from
          // the last resolved offset, so records already acted on are not delivered twice.
          await this.handle(batch.topic, m.value);
          payload.resolveOffset(m.offset);
          this.toCommit.set(`${batch.topic}\0${batch.partition}`, {
            topic: batch.topic,
            partition: batch.partition,
            offset: (BigInt(m.offset) + 1n).toString(),
          });
          this.dirty = true;
        }
        await payload.heartbeat();
        this.schedulePump();
      },
    });
    await joined;
    this.flushTimer = setInterval(
      () => void this.flush().catch((e) => this.logFailure("flush", e)),
      this.o.flushEveryMs ?? 1000,
    );
    this.progressTimer = setInterval(() => this.progress(), this.o.progressEveryMs ?? 5000);
    this.o.logger.info("sim ready", {
      devices: this.o.fleet.size,
      s1spDevices: this.o.s1sp.size,
      commands: topics.deviceCommands,
      s1sp: topics.s1spRequests,
      responses: topics.deviceResponses,
      group: this.o.groupId,
    });
  }

  private async handle(topic: string, value: Buffer | null): Promise<void> {
    const { topics, serdes } = this.o;
    if (value === null) return;
    try {
      if (topic === topics.deviceCommands) {
        const cmd = await serdes.deviceCommand.deserialize(topic, value);
        this.counts.deviceCommands++;
        const fate = this.o.fleet.receive(cmd, this.now());
        if (fate.kind === "unknownDevice")
          this.o.logger.warn("command for a device not in the fleet: no answer", {
            deviceId: cmd.deviceId,
            requestId: cmd.requestId,
          });
      } else {
        const req: S1spRequest = await serdes.s1spRequest.deserialize(topic, value);
        this.counts.s1spRequests++;
        this.o.s1sp.receive(req, this.now());
      }
    } catch (err) {
      if (err instanceof EcosError && err.retriable) {
        this.logFailure(`retrying ${topic}`, err);
        await new Promise((r) => setTimeout(r, 1000));
        throw err;
      }
      // A record the simulators cannot read is what a device would drop; say so and go on.
      this.counts.undecodable++;
      this.logFailure(`undecodable record on ${topic}`, err);
    }
  }

  private schedulePump(): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    const next = [this.o.fleet.nextDueAt(), this.o.s1sp.nextDueAt()].filter((x): x is number => x !== null);
    if (next.length === 0) return;
    const wait = Math.max(0, Math.min(MAX_TIMER_MS, Math.min(...next) - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pumping = this.pumping
        .then(() => this.pump())
        .catch((e) => this.logFailure("produce", e))
        .finally(() => this.schedulePump());
    }, wait);
  }

  /** Produces every answer due now. */
  private async pump(): Promise<void> {
    const now = this.now();
    const due: DeviceResponse[] = [...this.o.fleet.advance(now), ...this.o.s1sp.advance(now)];
    if (due.length > 0) this.dirty = true; // executions of held commands changed device state
    if (due.length === 0 || !this.producer) return;
    const topic = this.o.topics.deviceResponses;
    const n = this.partitions.get(topic) ?? 1;
    const serde: Serde<DeviceResponse> = this.o.serdes.deviceResponse;
    try {
      await this.producer.send({
        topic,
        messages: due.map((r) => ({
          key: r.deviceId,
          value: serde.serialize(topic, r),
          timestamp: String(r.answeredAt),
          partition: partitionForKey(Buffer.from(r.deviceId), n),
        })),
      });
      this.counts.produced += due.length;
    } catch (err) {
      this.counts.produceFailures += due.length;
      throw err;
    }
  }

  /** Saves the state, then commits the offsets of what the saved state already reflects. */
  private async flush(): Promise<void> {
    if (!this.dirty || this.flushing) return;
    this.flushing = true;
    try {
      await this.flushNow();
    } finally {
      this.flushing = false;
    }
  }

  private async flushNow(): Promise<void> {
    const offsets = [...this.toCommit.values()];
    this.toCommit.clear();
    this.dirty = false;
    if (this.o.stateFile !== null)
      saveStateFile(
        this.o.stateFile,
        encodeState(this.o.seed, this.o.fleet.entries(), this.o.s1sp.entries(), this.now()),
      );
    if (offsets.length > 0 && this.consumer) await this.consumer.commitOffsets(offsets);
  }

  private progress(): void {
    const f = this.o.fleet.stats;
    const s = this.o.s1sp.stats;
    this.o.logger.info("sim progress", {
      commands: f.commands,
      s1spRequests: s.requests,
      produced: this.counts.produced,
      inFlight: this.o.fleet.inFlight + this.o.s1sp.inFlight,
      lost: f.lost + s.lost,
      late: f.late + s.late,
    });
  }

  private logFailure(what: string, err: unknown): void {
    const e = err as { code?: string; message?: string };
    this.o.logger.error(what, { code: e.code ?? "", message: e.message ?? String(err) });
  }

  summary(): SimSummary {
    return {
      devices: this.o.fleet.size,
      s1spDevices: this.o.s1sp.size,
      deviceCommands: this.counts.deviceCommands,
      s1spRequests: this.counts.s1spRequests,
      undecodable: this.counts.undecodable,
      responsesProduced: this.counts.produced,
      produceFailures: this.counts.produceFailures,
      unsentAtStop: this.o.fleet.inFlight + this.o.s1sp.inFlight,
      device: this.o.fleet.stats,
      s1sp: this.o.s1sp.stats,
    };
  }

  /** Graceful stop: no new records, answers due now produced, state saved, offsets committed. */
  async stop(): Promise<SimSummary> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    await this.consumer?.stop();
    await this.pumping.catch(() => {});
    await this.pump().catch((e) => this.logFailure("produce", e));
    while (this.flushing) await new Promise((r) => setTimeout(r, 10));
    if (this.dirty || this.toCommit.size > 0) await this.flushNow().catch((e) => this.logFailure("flush", e));
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
    return this.summary();
  }
}

/** JSON serdes of the CoS records (Buffers as base64), for tests and registry-less runs. */
export function jsonSimSerdes(): SimSerdes {
  const b64 = (b: Buffer | null): string | null => (b === null ? null : b.toString("base64"));
  const buf = (s: unknown): Buffer | null => (typeof s === "string" ? Buffer.from(s, "base64") : null);
  const serde = <T extends object>(name: string, bytesFields: readonly (keyof T)[]): Serde<T> => ({
    name: `json:${name}`,
    serialize: (_t, v) => {
      const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
      for (const f of bytesFields) o[f as string] = b64(v[f] as Buffer | null);
      return Buffer.from(JSON.stringify(o), "utf8");
    },
    deserialize: (_t, data) => {
      const o = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      for (const f of bytesFields) o[f as string] = buf(o[f as string]);
      return o as T;
    },
  });
  return {
    deviceCommand: serde<DeviceCommand>("DeviceCommand", ["command"]),
    s1spRequest: serde<S1spRequest>("S1spRequest", ["countersigned"]),
    deviceResponse: serde<DeviceResponse>("DeviceResponse", ["payload"]),
  };
}
