/** The anomaly behaviour suite on the real broker (Kafka driver, exactly-once transactions). */
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { anomalySuite } from "../anomaly/anomaly-suite";
import { kafkaHarness } from "./kafka-harness";
import { testServices } from "./services";

describe("DSP anomaly topology on the real broker", () => {
  // The driver runs in this process, so an in-memory registry serves both sides.
  const registry = new InMemorySchemaRegistry();
  anomalySuite(
    () => kafkaHarness(testServices().kafkaBrokers, "anomaly"),
    () => registry,
  );
});
