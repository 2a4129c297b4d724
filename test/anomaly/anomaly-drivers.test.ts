/** The anomaly behaviour suite on the in-process driver (the Kafka run is in test/integration). */
import { InMemorySchemaRegistry } from "../../schemas/registry";
import { inProcessHarness } from "../runtime/in-process-harness";
import { anomalySuite } from "./anomaly-suite";

describe("DSP anomaly topology on the in-process driver", () => {
  const registry = new InMemorySchemaRegistry();
  anomalySuite(
    () => inProcessHarness("anomaly-suite"),
    () => registry,
  );
});
