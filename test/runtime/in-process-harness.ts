/** The in-process driver behind the behavioural suites' harness (runtime and anomaly suites). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import type { Serde } from "../../processors/runtime/serde";
import { DEFAULT_DEAD_LETTER_TOPIC } from "../../processors/runtime/topics";
import type { Topology } from "../../processors/runtime/topology";
import type { Harness, HarnessRecord } from "./behaviour-suite";

export async function inProcessHarness(applicationId: string): Promise<Harness> {
  const partitions = 3;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecos-inproc-"));
  let driver: InProcessDriver | undefined;
  const reads = new Map<string, Array<HarnessRecord<unknown>>>();
  return {
    prefix: "",
    partitions,
    async start(topology: Topology) {
      driver = await InProcessDriver.create(topology, {
        applicationId,
        partitions,
        stateDir,
        topicPartitions: { [DEFAULT_DEAD_LETTER_TOPIC]: 1 },
      });
    },
    async pipe(topic, records, serde) {
      await driver!.pipeInput(topic, records, serde);
    },
    async pipeRaw(topic, records) {
      await driver!.pipeRaw(topic, records);
    },
    async read<V>(topic: string, serde: Serde<V>, expected: number) {
      const acc = (reads.get(topic) ?? []) as Array<HarnessRecord<V>>;
      for (const r of await driver!.readOutput(topic, serde)) {
        acc.push({
          key: r.key,
          value: r.value,
          partition: r.partition,
          timestamp: r.timestamp,
          headers: { ...r.headers },
        });
      }
      reads.set(topic, acc);
      if (acc.length < expected)
        throw new Error(`expected ${expected} records on ${topic}, found ${acc.length}`);
      return acc;
    },
    deadLetterTopic: () => DEFAULT_DEAD_LETTER_TOPIC,
    async storeEntries<V>(name: string) {
      return driver!.storeEntries<V>(name);
    },
    async restart() {
      await driver!.restart();
    },
    async close() {
      await driver?.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
