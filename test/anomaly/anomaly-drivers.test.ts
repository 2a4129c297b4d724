/** The anomaly behaviour suite on the in-process driver (the Kafka run is in test/integration). */
import { InProcessDriver } from "../../processors/runtime/in-process-driver";
import type { Serde } from "../../processors/runtime/serde";
import type { Topology } from "../../processors/runtime/topology";
import { InMemorySchemaRegistry } from "../../schemas/registry";
import type { Harness, HarnessRecord } from "../runtime/behaviour-suite";
import { anomalySuite } from "./anomaly-suite";

async function inProcessHarness(): Promise<Harness> {
  let driver: InProcessDriver | undefined;
  const reads = new Map<string, Array<HarnessRecord<unknown>>>();
  return {
    prefix: "",
    partitions: 3,
    async start(topology: Topology) {
      driver = await InProcessDriver.create(topology, { applicationId: "anomaly-suite", partitions: 3 });
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
    deadLetterTopic: () => "ecos.dead-letters",
    async storeEntries<V>(name: string) {
      return driver!.storeEntries<V>(name);
    },
    async restart() {
      await driver!.restart();
    },
    async close() {
      await driver?.close();
    },
  };
}

describe("DSP anomaly topology on the in-process driver", () => {
  const registry = new InMemorySchemaRegistry();
  anomalySuite(inProcessHarness, () => registry);
});
