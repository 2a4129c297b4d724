import { EcosError } from "../../processors/runtime/errors";
import { loadConfig } from "../../deploy/config/config";

describe("configuration", () => {
  test("defaults: embedded driver, in-memory registry, continue on failure; frozen", () => {
    const c = loadConfig({}, {}, "/srv/ecos");
    expect(c.kafkaBrokers).toEqual([]);
    expect(c.registryUrl).toBeUndefined();
    expect(c.applicationId).toBe("ecos-stream");
    expect(c.stateDir).toBe("/srv/ecos/.local/state");
    expect(c.onFailure).toBe("continue");
    expect(c.connectTimeoutMs).toBe(60000);
    expect(Object.isFrozen(c)).toBe(true);
  });
  test("environment is read, and flags win over it", () => {
    const c = loadConfig(
      { ECOS_KAFKA_BROKERS: "a:9092, b:9093", ECOS_APPLICATION_ID: "from-env", ECOS_REPLICATION_FACTOR: "3" },
      { applicationId: "from-flag" },
    );
    expect(c.kafkaBrokers).toEqual(["a:9092", "b:9093"]);
    expect(c.applicationId).toBe("from-flag");
    expect(c.replicationFactor).toBe(3);
  });
  test.each([
    ["ECOS_KAFKA_BROKERS", "localhost"],
    ["ECOS_LOG_LEVEL", "loud"],
    ["ECOS_ON_FAILURE", "ignore"],
    ["ECOS_REPLICATION_FACTOR", "0"],
    ["ECOS_CONNECT_TIMEOUT_MS", "1.5"],
    ["ECOS_REGISTRY_URL", "ftp://x"],
    ["ECOS_APPLICATION_ID", "has space"],
  ])("%s=%s is refused with ECOS_CONFIG_INVALID naming the variable", (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EcosError);
    expect((err as EcosError).code).toBe("ECOS_CONFIG_INVALID");
    expect((err as EcosError).message).toContain(name);
  });
});
