import { validateDuisRequest } from "../../workers/dsp/validate";
import { opensslEcdsa } from "../../workers/crypto/ecdsa";
import {
  DEFAULT_XML_LIMITS,
  XmlError,
  childElements,
  parseXml,
  parseXmlString,
  textContent,
} from "../../workers/xml/parser";
import { RECEIVED_AT, signed623, trustStore } from "./fixtures";

const xmlError = (s: string): string => {
  try {
    parseXmlString(s);
  } catch (err) {
    expect(err).toBeInstanceOf(XmlError);
    return (err as Error).message;
  }
  throw new Error(`parsed: ${s.slice(0, 80)}`);
};

describe("XML parser: well-formed input", () => {
  test("elements, namespaces, attributes, text, CDATA, comments and references", () => {
    const doc = parseXmlString(
      `<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<!-- before -->\n<a:r xmlns:a="urn:a" xmlns="urn:d" a:x="1&amp;2" y='&#x9;t&#10;'>` +
        `<c>x &lt; y <![CDATA[<raw>&amp;]]><!-- c -->z</c><d/></a:r>\n`,
    );
    const r = doc.root;
    expect([r.ns, r.local, r.prefix]).toEqual(["urn:a", "r", "a"]);
    expect(r.nsDecls).toEqual([
      { prefix: "a", uri: "urn:a" },
      { prefix: "", uri: "urn:d" },
    ]);
    expect(r.attributes.map((a) => [a.ns, a.local, a.value])).toEqual([
      ["urn:a", "x", "1&2"],
      ["", "y", "\tt\n"],
    ]);
    const [c, d] = childElements(r);
    expect(c!.ns).toBe("urn:d");
    expect(textContent(c!)).toBe("x < y <raw>&amp;z");
    expect(d!.children).toEqual([]);
  });

  test("line ends are normalised; a &#13; reference survives as CR", () => {
    const doc = parseXmlString("<r a='x\r\ny'>1\r\n2\r3&#13;</r>");
    expect(textContent(doc.root)).toBe("1\n2\n3\r");
    expect(doc.root.attributes[0]!.value).toBe("x y");
  });

  test("a UTF-8 BOM and multi-byte characters", () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("<r>£€😀</r>", "utf8")]);
    expect(textContent(parseXml(bytes).root)).toBe("£€😀");
  });
});

/** The hostile and malformed corpus: every entry is refused with an XmlError naming the problem. */
const HOSTILE: [string, string, RegExp][] = [
  [
    "billion laughs",
    `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><r>&lol2;</r>`,
    /DOCTYPE/,
  ],
  [
    "external entity (XXE)",
    `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>`,
    /DOCTYPE/,
  ],
  ["parameter entity", `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://x/">%p;]><r/>`, /DOCTYPE/],
  ["external DTD", `<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><r/>`, /DOCTYPE/],
  ["undeclared entity", `<r>&xxe;</r>`, /entity reference &xxe; is not allowed/],
  ["entity in an attribute", `<r a="&x;"/>`, /entity reference &x; is not allowed/],
  ["bare ampersand", `<r>a & b</r>`, /does not start a reference/],
  ["illegal character reference", `<r>&#0;</r>`, /not a legal XML character/],
  ["huge character reference", `<r>&#x110000;</r>`, /malformed character reference|not a legal/],
  ["processing instruction", `<r><?php echo 1 ?></r>`, /processing instructions/],
  ["stylesheet PI", `<?xml-stylesheet href="x"?><r/>`, /processing instructions/],
  ["XML 1.1", `<?xml version="1.1"?><r/>`, /version 1.1/],
  ["UTF-16 declared", `<?xml version="1.0" encoding="UTF-16"?><r/>`, /UTF-8 only/],
  ["control character", `<r>\u0001</r>`, /not allowed in XML/],
  ["unbound prefix", `<x:r/>`, /prefix 'x'/],
  ["unbound attribute prefix", `<r x:a="1"/>`, /prefix 'x'/],
  ["prefix undeclared to empty", `<r xmlns:x=""/>`, /XML 1.1 only/],
  ["xmlns bound", `<r xmlns:xmlns="urn:x"/>`, /xmlns may not be declared/],
  ["duplicate attribute", `<r a="1" a="2"/>`, /appears twice/],
  ["duplicate expanded attribute", `<r xmlns:p="urn:x" xmlns:q="urn:x" p:a="1" q:a="2"/>`, /appears twice/],
  ["mismatched end tag", `<r><a></b></r>`, /does not match/],
  ["truncated", `<r><a>text`, /ends inside/],
  ["truncated start tag", `<r><a b="1"`, /unterminated|ends inside/],
  ["two roots", `<r/><s/>`, /more than one root/],
  ["text after root", `<r/>x`, /content after the root/],
  ["no root", `<!-- only -->`, /no root/],
  ["']]>' in text", `<r>a]]>b</r>`, /not allowed in text/],
  ["'<' in attribute", `<r a="<"/>`, /not allowed in an attribute/],
  ["'--' in comment", `<r><!-- a -- b --></r>`, /'--'/],
  ["double colon name", `<a:b:c xmlns:a="urn:a"/>`, /more than one ':'/],
  ["unquoted attribute", `<r a=1/>`, /not quoted/],
];

describe("XML parser: names, ASCII or not, and end tags", () => {
  test("names with characters beyond ASCII anywhere, and the prefix/local split, read as the QName rule says", () => {
    const doc = parseXmlString(
      `<é:r xmlns:é="urn:e" xmlns:p="urn:p"><p:aé·b/><p:é/><a.b-c_9 p:ĳ="1"></a.b-c_9 ></é:r>`,
    );
    expect([doc.root.prefix, doc.root.local, doc.root.ns]).toEqual(["é", "r", "urn:e"]);
    expect(childElements(doc.root).map((e) => [e.prefix, e.local, e.ns])).toEqual([
      ["p", "aé·b", "urn:p"],
      ["p", "é", "urn:p"],
      ["", "a.b-c_9", ""],
    ]);
    expect(childElements(doc.root)[2]!.attributes.map((a) => [a.ns, a.local])).toEqual([["urn:p", "ĳ"]]);
  });

  test.each([
    ["a name continuing with ':' and not a name start", `<a:>x</a:>`, /more than one ':'/],
    ["a second colon after a non-ASCII local name", `<p:é:x xmlns:p="urn:p"/>`, /more than one ':'/],
    ["a name starting with a digit", `<9a/>`, /expected a name/],
    ["a name starting with a non-name character beyond ASCII", `<·a/>`, /expected a name/],
    ["an end tag that is a prefix of the open name", `<ab></a>`, /does not match/],
    ["an end tag that extends the open name", `<a></ab>`, /does not match/],
    ["an end tag that extends it beyond ASCII", `<a></aé>`, /does not match/],
    ["an end tag with junk before '>'", `<a></a x>`, /malformed end tag/],
    ["a long name beyond ASCII", `<${"é".repeat(300)}/>`, /name longer than 256/],
  ])("%s is refused", (_name, doc, message) => {
    expect(xmlError(doc)).toMatch(message);
  });
});

describe("XML parser: hostile and malformed input is refused with a clear error", () => {
  test.each(HOSTILE)("%s", (_name, doc, message) => {
    expect(xmlError(doc)).toMatch(message);
  });

  test("deep nesting is refused without recursion", () => {
    const deep = "<a>".repeat(20_000) + "</a>".repeat(20_000);
    expect(xmlError(deep)).toMatch(/nested deeper than 32/);
  });

  test("a 100 MB body is refused by size before it is decoded or parsed", () => {
    // Hostile from its first byte (a DOCTYPE, then invalid UTF-8): had the parser decoded or read any
    // of it, the error would name those; it must name the size alone. (No timing: that is a benchmark's job.)
    const big = Buffer.alloc(100 * 1024 * 1024, 0xff);
    big.write('<!DOCTYPE x [<!ENTITY a "aaaa">]>', 0, "latin1");
    expect(() => parseXml(big)).toThrow(/104857600 bytes, more than the 524288 accepted/);
    expect(() => parseXml(big)).not.toThrow(/DOCTYPE|UTF-8|entity/i);
  });

  test("too many elements and attributes, overlong names, invalid UTF-8", () => {
    const limits = { ...DEFAULT_XML_LIMITS, maxElements: 10 };
    expect(() => parseXmlString("<r>" + "<a/>".repeat(20) + "</r>", limits)).toThrow(/more than 10 elements/);
    expect(xmlError(`<r ${Array.from({ length: 40 }, (_, i) => `a${i}="1"`).join(" ")}/>`)).toMatch(
      /more than 32 attributes/,
    );
    expect(xmlError(`<${"n".repeat(300)}/>`)).toMatch(/name longer than 256/);
    expect(() => parseXml(Buffer.from([0x3c, 0x72, 0x3e, 0xff, 0x3c, 0x2f, 0x72, 0x3e]))).toThrow(
      /not valid UTF-8/,
    );
  });
});

/** Deterministic PRNG (mulberry32) so a failing fuzz case can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("fuzz: mutated 6.23 requests never crash or hang the validation", () => {
  const base = signed623();
  const trust = trustStore();
  const tokens = [
    "<",
    ">",
    "&",
    "&amp;",
    "&#0;",
    "]]>",
    "<!DOCTYPE r>",
    "<?pi?>",
    '"',
    "'",
    ":",
    "xmlns:sr=''",
    "</sr:Body>",
    "<sr:Body>",
    "\u0000",
    "\uFFFF",
    "é",
  ];

  test("2,000 seeded mutations give a result object, each failure with a check id", () => {
    const next = rng(0xdcc623);
    const outcomes = new Map<string, number>();
    const started = Date.now();
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(base);
      let mutated: Buffer = bytes;
      const kind = Math.floor(next() * 4);
      const at = Math.floor(next() * bytes.length);
      if (kind === 0) {
        mutated[at] = Math.floor(next() * 256);
      } else if (kind === 1) {
        mutated = mutated.subarray(0, at); // truncation
      } else if (kind === 2) {
        const len = 1 + Math.floor(next() * 64);
        mutated = Buffer.concat([
          mutated.subarray(0, at),
          mutated.subarray(Math.min(bytes.length, at + len)),
        ]);
      } else {
        const token = tokens[Math.floor(next() * tokens.length)]!;
        mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from(token, "utf8"), mutated.subarray(at)]);
      }
      const result = validateDuisRequest(mutated, RECEIVED_AT, { trust, ecdsa: opensslEcdsa });
      if (!result.ok) {
        expect(result.code).toBeDefined();
        expect(result.message).toEqual(expect.any(String));
      }
      const key = result.ok ? "ok" : (result.checkId ?? result.code ?? "?");
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    expect(Date.now() - started).toBeLessThan(20_000);
    // Mutations land mostly in base64 and text; each kind of failure must show up.
    expect(outcomes.get("xml")).toBeGreaterThan(0);
    expect(outcomes.get("signature")).toBeGreaterThan(0);
  });
});
