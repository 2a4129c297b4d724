/** How the sink reads a ClickHouse failure: transient (retry), the rows' fault (isolate) or fatal (stop). */
import { classifyFailure, clickhouseCode } from "../../../processors/sinks/clickhouse/failures";

describe("classifyFailure", () => {
  test.each([
    [
      "Code: 27. DB::Exception: Cannot parse input: expected '\"'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
      "row",
      27,
    ],
    ["Code: 41, e.displayText() = DB::Exception: Cannot parse datetime, e.what() = DB::Exception", "row", 41],
    [
      "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist., e.what() = DB::Exception",
      "fatal",
      60,
    ],
    ["Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)", "fatal", 516],
    ["Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)", "transient", 252],
    ["Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)", "transient", 241],
    ["connect ECONNREFUSED 127.0.0.1:18123", "transient", undefined],
    ["socket hang up", "transient", undefined],
    ["Timeout error.", "transient", undefined],
    ["something nobody expected", "transient", undefined],
  ])("%s -> %s", (message, kind, code) => {
    const f = classifyFailure(new Error(message));
    expect(f.kind).toBe(kind);
    expect(f.code).toBe(code);
  });

  test("reads the code in both the current and the 18.16 message forms", () => {
    expect(clickhouseCode("Code: 117. DB::Exception: x")).toBe(117);
    expect(clickhouseCode("Code: 117, e.displayText() = x")).toBe(117);
    expect(clickhouseCode("no code")).toBeUndefined();
  });
});
