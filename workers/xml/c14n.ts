/**
 * Canonical XML 1.0 (inclusive, W3C REC 2001-03-15) and Exclusive XML Canonicalization 1.0 (W3C REC
 * 2002-07-18), both without comments, over the trees of parser.ts — exactly what a DUIS signature
 * needs (reference §2.7):
 *
 * - the Reference digest is over the INCLUSIVE canonical form of the whole document with the
 *   enveloped Signature element removed (`canonicalizeDocument(doc, { omit })`);
 * - SignedInfo is canonicalised with EXCLUSIVE c14n (`canonicalizeExclusive(signedInfo)`).
 *
 * Rules implemented (both forms unless stated):
 * - no XML declaration, no DOCTYPE, nothing outside the document element (comments are dropped and
 *   the parser refuses processing instructions);
 * - empty elements as start/end tag pairs; CDATA sections as escaped text;
 * - text: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, CR → `&#xD;`;
 * - attribute values in double quotes: `&` → `&amp;`, `<` → `&lt;`, `"` → `&quot;`, TAB → `&#x9;`,
 *   LF → `&#xA;`, CR → `&#xD;` (values are already normalised by the parser);
 * - namespace declarations before attributes, sorted by prefix with the default namespace first;
 *   attributes sorted by namespace URI (none first), then local name, by UTF-16 code unit as the JDK;
 * - inclusive: a declaration is written where its binding differs from the one in scope at the parent
 *   element; `xmlns=""` only where it undoes a non-empty default of the parent; declarations of the
 *   `xml` prefix never;
 * - exclusive: a binding is written only on an element that visibly utilises it (its own prefix, or
 *   the prefix of one of its attributes; the default namespace for an unprefixed element) and only
 *   where the nearest output ancestor did not already write the same binding; `xmlns=""` only when an
 *   output ancestor wrote a non-empty default. No InclusiveNamespaces PrefixList (DUIS uses none).
 */
import type { XmlAttribute, XmlDocument, XmlElement, XmlNsDecl } from "./parser";
import { lookupNamespace } from "./parser";

const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<"\t\n\r]/;

function escapeText(v: string): string {
  if (!TEXT_SPECIAL.test(v)) return v;
  return v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#xD;");
}

function escapeAttr(v: string): string {
  if (!ATTR_SPECIAL.test(v)) return v;
  return v
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/"/g, "&quot;")
    .replace(/\t/g, "&#x9;")
    .replace(/\n/g, "&#xA;")
    .replace(/\r/g, "&#xD;");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byNamespaceThenLocal(a: XmlAttribute, b: XmlAttribute): number {
  return compare(a.ns, b.ns) || compare(a.local, b.local);
}

function byPrefix(a: XmlNsDecl, b: XmlNsDecl): number {
  return compare(a.prefix, b.prefix);
}

function attributesOf(el: XmlElement): string {
  const attrs = el.attributes;
  if (attrs.length === 0) return "";
  const sorted = attrs.length === 1 ? attrs : [...attrs].sort(byNamespaceThenLocal);
  let out = "";
  for (const a of sorted) out += ` ${a.name}="${escapeAttr(a.value)}"`;
  return out;
}

function nsDeclsOf(decls: { prefix: string; uri: string }[]): string {
  if (decls.length === 0) return "";
  if (decls.length > 1) decls.sort(byPrefix);
  let out = "";
  for (const d of decls)
    out += d.prefix === "" ? ` xmlns="${escapeAttr(d.uri)}"` : ` xmlns:${d.prefix}="${escapeAttr(d.uri)}"`;
  return out;
}

export interface InclusiveOptions {
  /** Elements left out with their whole subtree (the enveloped-signature transform). */
  readonly omit?: ReadonlySet<XmlElement>;
}

/**
 * Inclusive Canonical XML 1.0 without comments of the whole document, minus `omit` subtrees. This is
 * what the default node-set→octets conversion of XMLDSig produces for `URI=""` with only the enveloped
 * transform (reference §2.7 rule 2).
 */
export function canonicalizeDocument(doc: XmlDocument, options: InclusiveOptions = {}): string {
  return inclusive(doc, options.omit, undefined).join("");
}

/**
 * The inclusive canonical form of the whole document cut around `split` (elements in document order,
 * none inside another): segment 2k+1 is the canonical form of `split[k]`, the even segments the rest.
 * A subtree's canonical form depends only on the bindings in scope at its parent, not on its siblings,
 * so leaving out `split[k]` from `canonicalizeDocument` gives exactly the concatenation without
 * segment 2k+1: one pass serves both the digest of a signature (its own and later signatures left
 * out) and the digest of a countersignature (everything in).
 */
export function canonicalizeDocumentSegments(doc: XmlDocument, split: readonly XmlElement[]): string[] {
  return inclusive(doc, undefined, split.length ? new Set(split) : undefined);
}

function inclusive(
  doc: XmlDocument,
  omit: ReadonlySet<XmlElement> | undefined,
  split: ReadonlySet<XmlElement> | undefined,
): string[] {
  const segments: string[] = [];
  let out = "";
  // Explicit stack (elements, and the index of the next child of each; -1 = start tag not written),
  // in two arrays so that nothing is allocated per element.
  const els: XmlElement[] = [doc.root];
  const next: number[] = [-1];
  while (els.length) {
    const top = els.length - 1;
    const el = els[top]!;
    let i = next[top]!;
    if (i < 0) {
      i = 0;
      out += "<" + el.name;
      if (el.nsDecls.length) out += inclusiveNsDecls(el);
      if (el.attributes.length) out += attributesOf(el);
      out += ">";
    }
    // Emit children from the saved index until an element child needs descending into.
    const children = el.children;
    let descended = false;
    while (i < children.length) {
      const c = children[i++]!;
      if (c.kind === "text") {
        out += escapeText(c.value);
      } else if (!omit || !omit.has(c)) {
        next[top] = i;
        if (split && split.has(c)) {
          segments.push(out);
          out = "";
        }
        els.push(c);
        next.push(-1);
        descended = true;
        break;
      }
    }
    if (descended) continue;
    out += "</" + el.name + ">";
    els.pop();
    next.pop();
    if (split && split.has(el)) {
      segments.push(out);
      out = "";
    }
  }
  segments.push(out);
  return segments;
}

/** The namespace declarations inclusive c14n writes on `el`: those whose binding differs from the parent's. */
function inclusiveNsDecls(el: XmlElement): string {
  const decls: { prefix: string; uri: string }[] = [];
  for (const d of el.nsDecls) {
    if (d.prefix === "xml") continue;
    const inherited = el.parent ? lookupNamespace(el.parent, d.prefix) : d.prefix === "" ? "" : undefined;
    if (inherited === d.uri) continue;
    if (d.prefix === "" && d.uri === "" && (inherited === undefined || inherited === "")) continue;
    decls.push(d);
  }
  return nsDeclsOf(decls);
}

/**
 * Exclusive XML Canonicalization 1.0 without comments of the subtree rooted at `apex` (for a DUIS
 * signature: ds:SignedInfo). Namespace bindings are taken from the apex's full scope, so the `ds`
 * declaration written on an ancestor (or on ds:Signature) appears on the apex itself.
 */
export function canonicalizeExclusive(apex: XmlElement): string {
  let out = "";
  // rendered: bindings written by output ancestors, as a chain of frames.
  const stack: { el: XmlElement; phase: number; next: number; rendered: Map<string, string> }[] = [
    { el: apex, phase: 0, next: 0, rendered: new Map() },
  ];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const el = top.el;
    if (top.phase === 0) {
      top.phase = 1;
      const parentRendered = top.rendered;
      const used = new Set<string>([el.prefix]);
      for (const a of el.attributes) if (a.prefix !== "") used.add(a.prefix);
      const decls: { prefix: string; uri: string }[] = [];
      let rendered = parentRendered;
      for (const p of used) {
        if (p === "xml") continue;
        const uri = lookupNamespace(el, p) ?? "";
        const already = parentRendered.get(p);
        if (p === "" && uri === "" && (already === undefined || already === "")) continue;
        if (already === uri) continue;
        if (rendered === parentRendered) rendered = new Map(parentRendered);
        rendered.set(p, uri);
        decls.push({ prefix: p, uri });
      }
      top.rendered = rendered;
      out += `<${el.name}${nsDeclsOf(decls)}${attributesOf(el)}>`;
    }
    let descended = false;
    while (top.next < el.children.length) {
      const c = el.children[top.next++]!;
      if (c.kind === "text") {
        out += escapeText(c.value);
      } else {
        stack.push({ el: c, phase: 0, next: 0, rendered: top.rendered });
        descended = true;
        break;
      }
    }
    if (descended) continue;
    out += `</${el.name}>`;
    stack.pop();
  }
  return out;
}
