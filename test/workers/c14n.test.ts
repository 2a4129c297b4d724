import { DOMParser } from "@xmldom/xmldom";
import { C14nCanonicalization, ExclusiveCanonicalization } from "xml-crypto";
import { canonicalizeDocument, canonicalizeExclusive } from "../../workers/xml/c14n";
import type { XmlElement } from "../../workers/xml/parser";
import { childElements, parseXmlString } from "../../workers/xml/parser";
import { unsigned623 } from "./fixtures";

const inclusive = (xml: string): string => canonicalizeDocument(parseXmlString(xml));

/** xml-crypto's canonicalisers (an independent implementation over an xmldom DOM). */
function xmlCryptoInclusive(xml: string): string {
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  return new C14nCanonicalization().process(doc.documentElement, {}).toString();
}

describe("inclusive Canonical XML 1.0 (the DUIS digest)", () => {
  test("no XML declaration, attributes sorted by namespace URI then local name, namespaces first", () => {
    const xml = `<?xml version="1.0"?>\n<r xmlns:b="urn:b" xmlns:a="urn:a" z="1" b:y="2" a:y="3" a="4" xmlns="urn:d"/>`;
    expect(inclusive(xml)).toBe(
      `<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" a="4" z="1" a:y="3" b:y="2"></r>`,
    );
    expect(inclusive(xml)).toBe(xmlCryptoInclusive(xml));
  });

  test("unused declarations stay; superfluous re-declarations go; xmlns='' only where it undoes a default", () => {
    const xml = `<r xmlns="urn:d" xmlns:u="urn:unused"><a xmlns:u="urn:unused"><b xmlns=""><c xmlns=""/></b></a><d xmlns:u="urn:other"/></r>`;
    expect(inclusive(xml)).toBe(
      `<r xmlns="urn:d" xmlns:u="urn:unused"><a><b xmlns=""><c></c></b></a><d xmlns:u="urn:other"></d></r>`,
    );
    expect(inclusive(xml)).toBe(xmlCryptoInclusive(xml));
  });

  test("escaping of text and attributes; white space kept in content, normalised in attributes", () => {
    const xml = `<r a="&lt;&amp;&quot;&#9;&#10;&#13;'>" b=" x\ty ">\n  &lt;&gt;&amp;&#13;"'<![CDATA[<&>]]>\n</r>`;
    expect(inclusive(xml)).toBe(
      `<r a="&lt;&amp;&quot;&#x9;&#xA;&#xD;'>" b=" x y ">\n  &lt;&gt;&amp;&#xD;"'&lt;&amp;&gt;\n</r>`,
    );
    expect(inclusive(xml)).toBe(xmlCryptoInclusive(xml));
  });

  test("comments dropped, empty elements as start/end pairs, UTF-8 characters as themselves", () => {
    const xml = `<!-- a --><r><!-- b --><e/>£<e></e></r><!-- c -->`;
    expect(inclusive(xml)).toBe(`<r><e></e>£<e></e></r>`);
  });

  test("a whole 6.23 request matches xml-crypto byte for byte", () => {
    const xml = unsigned623().toString("utf8");
    expect(inclusive(xml)).toBe(xmlCryptoInclusive(xml));
  });

  test("omitting the enveloped signature keeps the white space around it", () => {
    const doc = parseXmlString(`<r xmlns:ds="urn:ds">\n  <a/>\n  <ds:S>x</ds:S>\n</r>`);
    const sig = childElements(doc.root)[1]!;
    expect(canonicalizeDocument(doc, { omit: new Set([sig]) })).toBe(
      `<r xmlns:ds="urn:ds">\n  <a></a>\n  \n</r>`,
    );
  });
});

describe("exclusive XML canonicalisation 1.0 (SignedInfo)", () => {
  const exclusiveOf = (xml: string, path: number[]): [string, string] => {
    let el: XmlElement = parseXmlString(xml).root;
    for (const i of path) el = childElements(el)[i]!;
    let node = new DOMParser().parseFromString(xml, "text/xml").documentElement as unknown as Element;
    for (const i of path) node = Array.from(node.childNodes).filter((n) => n.nodeType === 1)[i] as Element;
    return [canonicalizeExclusive(el), new ExclusiveCanonicalization().process(node, {}).toString()];
  };

  test("only visibly utilised namespaces, written where first used; the apex gets the inherited ds binding", () => {
    const xml =
      `<sr:Request xmlns:sr="urn:sr" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xsi="urn:xsi">` +
      `<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="a"/><x:y xmlns:x="urn:x" xsi:t="1"/></ds:SignedInfo></ds:Signature></sr:Request>`;
    const [ours, theirs] = exclusiveOf(xml, [0, 0]);
    expect(ours).toBe(
      `<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:CanonicalizationMethod Algorithm="a"></ds:CanonicalizationMethod>` +
        `<x:y xmlns:x="urn:x" xmlns:xsi="urn:xsi" xsi:t="1"></x:y></ds:SignedInfo>`,
    );
    expect(ours).toBe(theirs);
  });

  test("default namespace: written when used, xmlns='' only after a rendered non-empty default", () => {
    const xml = `<r xmlns="urn:d"><s><t xmlns=""><u/></t></s></r>`;
    const [ours, theirs] = exclusiveOf(xml, [0]);
    expect(ours).toBe(`<s xmlns="urn:d"><t xmlns=""><u></u></t></s>`);
    expect(ours).toBe(theirs);
    const [apexEmpty] = exclusiveOf(`<p:r xmlns:p="urn:p"><a><b/></a></p:r>`, [0]);
    expect(apexEmpty).toBe(`<a><b></b></a>`);
  });
});
