import { behaviourSuite } from "../runtime/behaviour-suite";
import { kafkaHarness } from "./kafka-harness";
import { testServices } from "./services";

describe("Kafka driver on the real broker: behavioural suite", () => {
  behaviourSuite(() => kafkaHarness(testServices().kafkaBrokers), { backends: ["memory", "lmdb"] });
});
