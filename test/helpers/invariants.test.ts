import {
  countSequenceViolations,
  countingViolations,
  tally,
  duplicateIds,
  mapDifferences,
  missingIds,
  offsetViolations,
} from "./invariants";

describe("invariant helpers", () => {
  test("duplicateIds finds repeats only", () => {
    expect(duplicateIds(["a", "b", "a", "c", "b", "a"])).toEqual(["a", "b"]);
    expect(duplicateIds(["a", "b"])).toEqual([]);
  });
  test("missingIds finds gaps", () => {
    expect(missingIds(["1", "2", "3"], ["3", "1"])).toEqual(["2"]);
    expect(missingIds(["1"], ["1", "9"])).toEqual([]);
  });
  test("countSequenceViolations flags a duplicate and a lost update", () => {
    expect(
      countSequenceViolations([
        { key: "k", count: 1 },
        { key: "j", count: 1 },
        { key: "k", count: 2 },
      ]),
    ).toEqual([]);
    expect(
      countSequenceViolations([
        { key: "k", count: 1 },
        { key: "k", count: 1 },
      ]),
    ).toEqual(["key k: expected 2, got 1"]);
    expect(
      countSequenceViolations([
        { key: "k", count: 1 },
        { key: "k", count: 3 },
      ]),
    ).toEqual(["key k: expected 2, got 3"]);
  });
  test("mapDifferences reports wrong, missing and unexpected keys", () => {
    const exp = new Map([
      ["a", 1],
      ["b", 2],
    ]);
    expect(
      mapDifferences(
        exp,
        new Map([
          ["a", 1],
          ["b", 2],
        ]),
      ),
    ).toEqual([]);
    expect(
      mapDifferences(
        exp,
        new Map([
          ["a", 2],
          ["c", 1],
        ]),
      ),
    ).toEqual(["a: expected 1, got 2", "b: expected 2, got undefined", "c: unexpected"]);
  });
  test("offsetViolations requires committed = last processed + 1", () => {
    expect(offsetViolations(new Map([[0, 10n]]), new Map([[0, 9n]]))).toEqual([]);
    expect(offsetViolations(new Map([[0, 9n]]), new Map([[0, 9n]]))).toEqual([
      "partition 0: committed 9, last processed 9",
    ]);
  });
});

describe("countingViolations and tally", () => {
  test("exact updates pass; a duplicate and a wrong final count are both reported", () => {
    const expected = tally(["a", "a", "b"], (k) => k);
    expect(expected).toEqual(
      new Map([
        ["a", 2],
        ["b", 1],
      ]),
    );
    const good = [
      { key: "a", partition: 0, value: { count: 1 } },
      { key: "b", partition: 1, value: { count: 1 } },
      { key: "a", partition: 0, value: { count: 2 } },
    ];
    expect(countingViolations(good, expected)).toEqual([]);
    const dup = [...good.slice(0, 2), { key: "a", partition: 0, value: { count: 1 } }];
    expect(countingViolations(dup, expected)).toEqual(["key a: expected 2, got 1", "a: expected 2, got 1"]);
  });
});
