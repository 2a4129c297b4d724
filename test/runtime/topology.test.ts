import { EcosError } from "../../processors/runtime/errors";
import { StringSerde } from "../../processors/runtime/serde";
import { TopologyBuilder } from "../../processors/runtime/topology";

const noop = () => ({ process() {} });

function expectInvalid(build: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    build();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EcosError);
  expect((err as EcosError).code).toBe("ECOS_TOPOLOGY_INVALID");
  expect((err as EcosError).message).toMatch(message);
}

describe("topology builder", () => {
  test("splits at internal topics into sub-topologies and keeps stores with their processors", () => {
    const t = new TopologyBuilder()
      .addSource("a", { topics: ["in"], valueSerde: StringSerde })
      .addProcessor("p1", noop, "a")
      .addStateStore({ name: "s1", valueSerde: StringSerde }, "p1")
      .addInternalTopic("rekeyed")
      .addSink("to-rekeyed", { topic: "rekeyed", valueSerde: StringSerde }, "p1")
      .addSource("b", { topics: ["rekeyed"], valueSerde: StringSerde })
      .addProcessor("p2", noop, "b")
      .addStateStore({ name: "s2", valueSerde: StringSerde, backend: "lmdb" }, "p2")
      .addSink("out", { topic: "out", valueSerde: StringSerde }, "p2")
      .build();
    expect(t.subtopologies.map((s) => [s.sourceTopics, s.stores])).toEqual([
      [["in"], ["s1"]],
      [["rekeyed"], ["s2"]],
    ]);
    expect(t.subtopologyOfTopic.get("rekeyed")).toBe(1);
    expect([...t.sinkTopics].sort()).toEqual(["out", "rekeyed"]);
    expect(t.describe()).toContain("Sub-topology 1: sources [rekeyed] stores [s2]");
  });
  test("a store shared by two processors joins their sub-topologies", () => {
    const t = new TopologyBuilder()
      .addSource("a", { topics: ["x"], valueSerde: StringSerde })
      .addSource("b", { topics: ["y"], valueSerde: StringSerde })
      .addProcessor("pa", noop, "a")
      .addProcessor("pb", noop, "b")
      .addStateStore({ name: "shared", valueSerde: StringSerde }, "pa", "pb")
      .build();
    expect(t.subtopologies).toHaveLength(1);
    expect(t.subtopologies[0]?.sourceTopics).toEqual(["x", "y"]);
  });
  test("wiring mistakes are refused with a precise message", () => {
    expectInvalid(
      () => new TopologyBuilder().addProcessor("p", noop, "nope"),
      /parent "nope" is not defined/,
    );
    expectInvalid(
      () =>
        new TopologyBuilder()
          .addSource("a", { topics: ["x"], valueSerde: StringSerde })
          .addSource("a", { topics: ["y"], valueSerde: StringSerde }),
      /used twice/,
    );
    expectInvalid(
      () =>
        new TopologyBuilder()
          .addSource("a", { topics: ["x"], valueSerde: StringSerde })
          .addSink("s", { topic: "o", valueSerde: StringSerde }, "a")
          .addProcessor("p", noop, "s"),
      /is a sink/,
    );
    expectInvalid(
      () =>
        new TopologyBuilder()
          .addSource("a", { topics: ["x"], valueSerde: StringSerde })
          .addInternalTopic("r")
          .build(),
      /internal topic "r"/,
    );
    expectInvalid(
      () =>
        new TopologyBuilder()
          .addSource("a", { topics: ["x"], valueSerde: StringSerde })
          .addSource("b", { topics: ["x"], valueSerde: StringSerde })
          .build(),
      /read by two sub-topologies/,
    );
  });
});
