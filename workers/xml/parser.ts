/**
 * A small, safe, non-validating XML 1.0 + Namespaces parser for DUIS documents.
 *
 * Why hand-written: a DOM parse of a 4.6 KB 6.23 costs ~220–400 µs here, more than the whole budget of a
 * validation at 3,000 requests/s per core. This parser builds only what the DSP needs — elements with
 * their namespace declarations, attributes and text — and what the canonicalisers (c14n.ts) need to
 * reproduce Canonical XML exactly.
 *
 * Hostile input is refused, never expanded: no DOCTYPE (so no internal or external entities and no
 * DTD-declared attribute defaults), no entity references other than the five predefined ones and
 * character references, no processing instructions other than the XML declaration, bounded size,
 * depth, element count, attribute count and name length. Every refusal is an {@link XmlError}; the
 * parser never recurses, so deep nesting cannot exhaust the stack.
 */

export const XML_NS = "http://www.w3.org/XML/1998/namespace";
export const XMLNS_NS = "http://www.w3.org/2000/xmlns/";

/** An attribute other than a namespace declaration. `value` is the normalised attribute value. */
export interface XmlAttribute {
  readonly name: string;
  readonly prefix: string;
  readonly local: string;
  /** Namespace URI; "" for an unprefixed attribute (attributes do not take the default namespace). */
  readonly ns: string;
  readonly value: string;
}

/** A namespace declaration written on an element: `xmlns="uri"` (prefix "") or `xmlns:p="uri"`. */
export interface XmlNsDecl {
  readonly prefix: string;
  readonly uri: string;
}

export interface XmlElement {
  readonly kind: "element";
  readonly name: string;
  readonly prefix: string;
  readonly local: string;
  /** Namespace URI of the element; "" when it is in no namespace. */
  readonly ns: string;
  readonly attributes: XmlAttribute[];
  /** Declarations written on this element, in document order. */
  readonly nsDecls: XmlNsDecl[];
  readonly children: XmlNode[];
  readonly parent: XmlElement | null;
}

export interface XmlText {
  readonly kind: "text";
  /** Character data after entity and line-end processing (CDATA sections included as text). */
  value: string;
}

export type XmlNode = XmlElement | XmlText;

export interface XmlDocument {
  readonly root: XmlElement;
}

export interface XmlLimits {
  /** Largest document accepted, in bytes (checked before decoding). Default 512 KiB. */
  readonly maxBytes: number;
  /** Deepest element nesting accepted (the root is depth 1). Default 32. */
  readonly maxDepth: number;
  /** Most elements accepted in one document. Default 4096. */
  readonly maxElements: number;
  /** Most attributes (namespace declarations included) on one element. Default 32. */
  readonly maxAttributes: number;
  /** Longest element or attribute name. Default 256. */
  readonly maxNameLength: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({
  maxBytes: 512 * 1024,
  maxDepth: 32,
  maxElements: 4096,
  maxAttributes: 32,
  maxNameLength: 256,
});

/** A document that is not well-formed, not namespace-well-formed, or refused as hostile or too big. */
export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XmlError";
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

// XML 1.0 forbids these code points anywhere in a document (§2.2 Char). TextDecoder(fatal) already
// refuses lone surrogates and malformed UTF-8.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
// QName: NCName (':' NCName)?. The NameStartChar/NameChar ranges of XML 1.0 5th edition, without ':'.
const NC_START =
  "A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\uD800-\\uDBFF\\uDC00-\\uDFFF";
const NC_CHAR = `${NC_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
// Surrogate code units stand for astral name characters (matched per UTF-16 unit, without the u flag).
// eslint-disable-next-line no-misleading-character-class
const QNAME = new RegExp(`[${NC_START}][${NC_CHAR}]*(?::[${NC_START}][${NC_CHAR}]*)?`, "y");
const XML_DECL = /<\?xml([ \t\n]+[^?]*)?\?>/y;
const XML_DECL_ATTR = /[ \t\n]+(version|encoding|standalone)[ \t\n]*=[ \t\n]*(?:"([^"]*)"|'([^']*)')/y;

const C = {
  TAB: 9,
  LF: 10,
  SPACE: 32,
  BANG: 33,
  DQUOTE: 34,
  HASH: 35,
  AMP: 38,
  SQUOTE: 39,
  DASH: 45,
  SLASH: 47,
  SEMI: 59,
  LT: 60,
  EQ: 61,
  GT: 62,
  QUESTION: 63,
  RBRACKET: 93,
} as const;

/** NameStartChar of XML 1.0 within ASCII, without ':' (NCName). */
function isAsciiNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

/** NameChar of XML 1.0 within ASCII, without ':' (NCName). */
function isAsciiNameChar(c: number): boolean {
  return isAsciiNameStart(c) || (c >= 48 && c <= 57) || c === 45 || c === 46;
}

function isSpace(c: number): boolean {
  return c === C.SPACE || c === C.LF || c === C.TAB;
}

/**
 * Parses the bytes of an XML document. The bytes are not retained; keep them yourself if you need
 * them (the DSP verifies and forwards the bytes received, never a re-serialisation).
 */
export function parseXml(bytes: Uint8Array, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlDocument {
  if (bytes.length > limits.maxBytes) {
    throw new XmlError(`document is ${bytes.length} bytes, more than the ${limits.maxBytes} accepted`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new XmlError("document is not valid UTF-8");
  }
  return parseXmlString(text, limits);
}

/** Parses a document already decoded to a string (a leading BOM is ignored). */
export function parseXmlString(input: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlDocument {
  let s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  if (s.length > limits.maxBytes) throw new XmlError(`document longer than the ${limits.maxBytes} accepted`);
  // XML 1.0 §2.11: CRLF and lone CR become LF before parsing (a &#13; reference still yields CR).
  if (s.indexOf("\r") >= 0) s = s.replace(/\r\n?/g, "\n");
  const bad = FORBIDDEN_CHAR.exec(s);
  if (bad)
    throw new XmlError(
      `character U+${bad[0].charCodeAt(0).toString(16).padStart(4, "0")} is not allowed in XML`,
    );
  return new Parser(s, limits).parse();
}

class Parser {
  private pos = 0;
  private elements = 0;
  private selfClosing = false;

  constructor(
    private readonly s: string,
    private readonly limits: XmlLimits,
  ) {}

  parse(): XmlDocument {
    const s = this.s;
    if (/^<\?xml[ \t\n]/.test(s)) {
      XML_DECL.lastIndex = 0;
      const decl = XML_DECL.exec(s);
      if (!decl) throw this.error("malformed XML declaration");
      this.checkXmlDecl(decl[1] ?? "");
      this.pos = XML_DECL.lastIndex;
    }
    let root: XmlElement | null = null;
    for (;;) {
      this.skipSpace();
      if (this.pos >= s.length) break;
      if (s.charCodeAt(this.pos) !== C.LT)
        throw this.error(root ? "content after the root element" : "text before the root element");
      if (s.startsWith("<!--", this.pos)) {
        this.skipComment();
      } else if (s.startsWith("<?", this.pos)) {
        throw this.error("processing instructions are not allowed");
      } else if (s.startsWith("<!DOCTYPE", this.pos)) {
        throw this.error("DOCTYPE is not allowed (no DTD, no entity declarations)");
      } else if (s.startsWith("<!", this.pos)) {
        throw this.error("markup declaration outside the root element");
      } else {
        if (root) throw this.error("more than one root element");
        root = this.parseElementTree();
      }
    }
    if (!root) throw this.error("no root element");
    return { root };
  }

  private checkXmlDecl(body: string): void {
    XML_DECL_ATTR.lastIndex = 0;
    let seen = 0;
    let at = 0;
    const order = ["version", "encoding", "standalone"];
    while (at < body.length) {
      XML_DECL_ATTR.lastIndex = at;
      const m = XML_DECL_ATTR.exec(body);
      if (!m) {
        if (/^[ \t\n]*$/.test(body.slice(at))) break;
        throw this.error("malformed XML declaration");
      }
      const name = m[1]!;
      const value = m[2] ?? m[3] ?? "";
      const idx = order.indexOf(name);
      if (idx < seen) throw this.error("malformed XML declaration");
      seen = idx + 1;
      if (name === "version" && value !== "1.0")
        throw this.error(`XML version ${value} is not accepted (1.0 only)`);
      if (name === "encoding" && value.toUpperCase() !== "UTF-8")
        throw this.error(`encoding ${value} is not accepted (UTF-8 only)`);
      if (name === "standalone" && value !== "yes" && value !== "no")
        throw this.error("malformed XML declaration");
      at = XML_DECL_ATTR.lastIndex;
    }
    if (!body.includes("version")) throw this.error("XML declaration without version");
  }

  /** Parses the root element and everything in it, iteratively. */
  private parseElementTree(): XmlElement {
    const s = this.s;
    const stack: XmlElement[] = [];
    let root: XmlElement | null = null;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (Number.isNaN(c))
        throw this.error(
          stack.length ? `document ends inside <${stack[stack.length - 1]!.name}>` : "document ends early",
        );
      if (c === C.LT) {
        const next = s.charCodeAt(this.pos + 1);
        if (next === C.SLASH) {
          const open = stack.pop();
          if (!open) throw this.error("end tag without a start tag");
          this.parseEndTag(open);
          if (stack.length === 0) return root!;
        } else if (next === C.BANG) {
          if (stack.length === 0) throw this.error("markup before the root element");
          if (s.startsWith("<!--", this.pos)) this.skipComment();
          else if (s.startsWith("<![CDATA[", this.pos)) this.parseCData(stack[stack.length - 1]!);
          else if (s.startsWith("<!DOCTYPE", this.pos))
            throw this.error("DOCTYPE is not allowed (no DTD, no entity declarations)");
          else throw this.error("markup declarations are not allowed inside an element");
        } else if (next === C.QUESTION) {
          throw this.error("processing instructions are not allowed");
        } else {
          const parent = stack.length ? stack[stack.length - 1]! : null;
          if (stack.length >= this.limits.maxDepth)
            throw this.error(`elements nested deeper than ${this.limits.maxDepth}`);
          const el = this.parseStartTag(parent);
          if (parent) parent.children.push(el);
          else root = el;
          if (this.selfClosing) {
            if (!parent) return el;
          } else {
            stack.push(el);
          }
        }
      } else {
        if (stack.length === 0) throw this.error("text outside the root element");
        this.parseText(stack[stack.length - 1]!);
      }
    }
  }

  /** Sets `selfClosing` for the tag just read (a field, so no tuple is allocated per element). */
  private parseStartTag(parent: XmlElement | null): XmlElement {
    const s = this.s;
    this.pos++; // '<'
    const name = this.readName();
    if (++this.elements > this.limits.maxElements)
      throw this.error(`more than ${this.limits.maxElements} elements`);
    const rawAttrs: { name: string; value: string }[] = [];
    const nsDecls: XmlNsDecl[] = [];
    let selfClosing = false;
    for (;;) {
      const hadSpace = this.skipSpace();
      const c = s.charCodeAt(this.pos);
      if (c === C.GT) {
        this.pos++;
        break;
      }
      if (c === C.SLASH) {
        if (s.charCodeAt(this.pos + 1) !== C.GT) throw this.error("'/' not followed by '>' in a start tag");
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (Number.isNaN(c)) throw this.error(`document ends inside the start tag <${name}`);
      if (!hadSpace) throw this.error(`no white space before an attribute in <${name}>`);
      const attrName = this.readName();
      this.skipSpace();
      if (s.charCodeAt(this.pos) !== C.EQ) throw this.error(`attribute ${attrName} has no '='`);
      this.pos++;
      this.skipSpace();
      const value = this.readAttrValue();
      if (rawAttrs.length + nsDecls.length >= this.limits.maxAttributes)
        throw this.error(`more than ${this.limits.maxAttributes} attributes on <${name}>`);
      if (attrName === "xmlns" || attrName.startsWith("xmlns:")) {
        const prefix = attrName === "xmlns" ? "" : attrName.slice(6);
        this.checkNsDecl(prefix, value);
        for (const d of nsDecls)
          if (d.prefix === prefix)
            throw this.error(`namespace prefix '${prefix}' declared twice on <${name}>`);
        nsDecls.push({ prefix, uri: value });
      } else {
        for (const a of rawAttrs)
          if (a.name === attrName) throw this.error(`attribute ${attrName} appears twice on <${name}>`);
        rawAttrs.push({ name: attrName, value });
      }
    }
    // (Loops, not closures: tsx wraps every closure it creates at run time, which shows on this path.)
    const colon = name.indexOf(":");
    const prefix = colon < 0 ? "" : name.slice(0, colon);
    const local = colon < 0 ? name : name.slice(colon + 1);
    const ns = resolvePrefix(nsDecls, parent, prefix);
    if (ns === undefined) throw this.error(`namespace prefix '${prefix}' of <${name}> is not declared`);
    if (prefix === "xmlns") throw this.error("elements may not have the prefix xmlns");
    const attributes: XmlAttribute[] = [];
    for (const a of rawAttrs) {
      const ac = a.name.indexOf(":");
      const ap = ac < 0 ? "" : a.name.slice(0, ac);
      const al = ac < 0 ? a.name : a.name.slice(ac + 1);
      const ans = ap === "" ? "" : resolvePrefix(nsDecls, parent, ap);
      if (ans === undefined)
        throw this.error(`namespace prefix '${ap}' of attribute ${a.name} is not declared`);
      if (ap !== "") {
        for (const b of attributes)
          if (b.ns === ans && b.local === al)
            throw this.error(`attribute {${ans}}${al} appears twice on <${name}>`);
      }
      attributes.push({ name: a.name, prefix: ap, local: al, ns: ans, value: a.value });
    }
    const el: XmlElement = {
      kind: "element",
      name,
      prefix,
      local,
      ns,
      attributes,
      nsDecls,
      children: [],
      parent,
    };
    this.selfClosing = selfClosing;
    return el;
  }

  private checkNsDecl(prefix: string, uri: string): void {
    if (prefix === "xmlns") throw this.error("the prefix xmlns may not be declared");
    if (prefix === "xml") {
      if (uri !== XML_NS) throw this.error("the prefix xml may only be bound to its own namespace");
      return;
    }
    if (uri === XML_NS || uri === XMLNS_NS)
      throw this.error(`namespace ${uri} may not be bound to '${prefix}'`);
    if (prefix !== "" && uri === "")
      throw this.error(`prefix '${prefix}' undeclared with an empty namespace (XML 1.1 only)`);
  }

  private parseEndTag(open: XmlElement): void {
    this.pos += 2; // '</'
    const s = this.s;
    const n = open.name.length;
    // The usual case: the open element's name, then a character that cannot continue a name (so no
    // name string is built). Anything else goes through readName and its errors.
    const name0 = open.name;
    let k = 0;
    while (k < n && s.charCodeAt(this.pos + k) === name0.charCodeAt(k)) k++;
    if (k === n) {
      const c = s.charCodeAt(this.pos + n);
      if (c === C.GT || isSpace(c)) {
        this.pos += n;
        this.skipSpace();
        if (s.charCodeAt(this.pos) !== C.GT) throw this.error(`malformed end tag </${open.name}`);
        this.pos++;
        return;
      }
    }
    const name = this.readName();
    this.skipSpace();
    if (this.s.charCodeAt(this.pos) !== C.GT) throw this.error(`malformed end tag </${name}`);
    this.pos++;
    if (name !== open.name) throw this.error(`end tag </${name}> does not match <${open.name}>`);
  }

  private parseText(el: XmlElement): void {
    const s = this.s;
    const start = this.pos;
    let end = s.indexOf("<", start);
    if (end < 0) end = s.length;
    const raw = s.slice(start, end);
    if (raw.includes("]]>")) throw this.error("']]>' is not allowed in text");
    const value = raw.indexOf("&") >= 0 ? this.decodeEntities(raw, start) : raw;
    this.pos = end;
    appendText(el, value);
  }

  private parseCData(el: XmlElement): void {
    const start = this.pos + 9;
    const end = this.s.indexOf("]]>", start);
    if (end < 0) throw this.error("unterminated CDATA section");
    appendText(el, this.s.slice(start, end));
    this.pos = end + 3;
  }

  private skipComment(): void {
    const start = this.pos + 4;
    const end = this.s.indexOf("--", start);
    if (end < 0) throw this.error("unterminated comment");
    if (this.s.charCodeAt(end + 2) !== C.GT) throw this.error("'--' is not allowed inside a comment");
    this.pos = end + 3;
  }

  private readName(): string {
    // Fast path for ASCII names (all of DUIS): the same QName rule as QNAME, without a match object.
    // Any other character sends the name to the regular expression, which covers the full ranges.
    const s = this.s;
    const start = this.pos;
    let i = start;
    let c = s.charCodeAt(i);
    if (isAsciiNameStart(c)) {
      let colon = -1;
      for (;;) {
        c = s.charCodeAt(++i);
        if (isAsciiNameChar(c)) continue;
        if (c === 58 && colon < 0 && isAsciiNameStart(s.charCodeAt(i + 1))) {
          colon = i++;
          continue;
        }
        break;
      }
      // Stopped at a character that cannot continue an ASCII name. If it, or what follows a first
      // ':', is non-ASCII (possibly a name character), the full rule decides; NaN (the end) is fine.
      const after = c === 58 && colon < 0 ? s.charCodeAt(i + 1) : 0;
      if (!(c >= 0x80) && !(after >= 0x80)) {
        if (i - start > this.limits.maxNameLength)
          throw this.error(`name longer than ${this.limits.maxNameLength} characters`);
        this.pos = i;
        const name = s.slice(start, i);
        if (c === 58) throw this.error(`name ${name}: has more than one ':'`);
        return name;
      }
    }
    return this.readNameSlow();
  }

  private readNameSlow(): string {
    QNAME.lastIndex = this.pos;
    const m = QNAME.exec(this.s);
    if (!m) throw this.error("expected a name");
    const name = m[0];
    if (name.length > this.limits.maxNameLength)
      throw this.error(`name longer than ${this.limits.maxNameLength} characters`);
    this.pos = QNAME.lastIndex;
    // A name continuing with ':' after a full QName (a:b:c) is not namespace-well-formed.
    if (this.s.charCodeAt(this.pos) === 58) throw this.error(`name ${name}: has more than one ':'`);
    return name;
  }

  private readAttrValue(): string {
    const s = this.s;
    const q = s.charCodeAt(this.pos);
    if (q !== C.DQUOTE && q !== C.SQUOTE) throw this.error("attribute value not quoted");
    const start = this.pos + 1;
    const end = s.indexOf(q === C.DQUOTE ? '"' : "'", start);
    if (end < 0) throw this.error("unterminated attribute value");
    let raw = s.slice(start, end);
    if (raw.indexOf("<") >= 0) throw this.error("'<' is not allowed in an attribute value");
    this.pos = end + 1;
    // XML 1.0 §3.3.3: literal white space becomes a space; references are decoded afterwards, so a
    // &#9; or &#10; survives as itself (c14n then writes it as &#x9; / &#xA;).
    if (/[\t\n]/.test(raw)) raw = raw.replace(/[\t\n]/g, " ");
    return raw.indexOf("&") >= 0 ? this.decodeEntities(raw, start) : raw;
  }

  private decodeEntities(raw: string, offset: number): string {
    let out = "";
    let i = 0;
    for (;;) {
      const amp = raw.indexOf("&", i);
      if (amp < 0) return out + raw.slice(i);
      out += raw.slice(i, amp);
      const semi = raw.indexOf(";", amp);
      if (semi < 0 || semi - amp > 12) {
        this.pos = offset + amp;
        throw this.error("'&' that does not start a reference");
      }
      const ref = raw.slice(amp + 1, semi);
      out += this.resolveReference(ref, offset + amp);
      i = semi + 1;
    }
  }

  private resolveReference(ref: string, at: number): string {
    switch (ref) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "apos":
        return "'";
      case "quot":
        return '"';
    }
    if (ref.charCodeAt(0) === C.HASH) {
      const hex = ref.charCodeAt(1) === 120; // 'x'
      const digits = ref.slice(hex ? 2 : 1);
      if (!(hex ? /^[0-9A-Fa-f]{1,6}$/ : /^[0-9]{1,7}$/).test(digits)) {
        this.pos = at;
        throw this.error(`malformed character reference &${ref};`);
      }
      const cp = parseInt(digits, hex ? 16 : 10);
      const legal =
        cp === 0x9 ||
        cp === 0xa ||
        cp === 0xd ||
        (cp >= 0x20 && cp <= 0xd7ff) ||
        (cp >= 0xe000 && cp <= 0xfffd) ||
        (cp >= 0x10000 && cp <= 0x10ffff);
      if (!legal) {
        this.pos = at;
        throw this.error(`character reference &${ref}; is not a legal XML character`);
      }
      return String.fromCodePoint(cp);
    }
    this.pos = at;
    throw this.error(
      `entity reference &${ref}; is not allowed (only the five predefined entities and character references)`,
    );
  }

  private skipSpace(): boolean {
    const start = this.pos;
    while (isSpace(this.s.charCodeAt(this.pos))) this.pos++;
    return this.pos > start;
  }

  private error(message: string): XmlError {
    const before = this.s.slice(0, Math.min(this.pos, this.s.length));
    const line = before.split("\n").length;
    const col = this.pos - before.lastIndexOf("\n");
    return new XmlError(`${message} (line ${line}, column ${col})`);
  }
}

function resolvePrefix(
  own: readonly XmlNsDecl[],
  parent: XmlElement | null,
  prefix: string,
): string | undefined {
  for (const d of own) if (d.prefix === prefix) return d.uri;
  if (parent) return lookupNamespace(parent, prefix);
  return prefix === "" ? "" : prefix === "xml" ? XML_NS : undefined;
}

function appendText(el: XmlElement, value: string): void {
  if (value.length === 0) return;
  const last = el.children[el.children.length - 1];
  if (last && last.kind === "text") last.value += value;
  else el.children.push({ kind: "text", value });
}

/** The namespace URI bound to `prefix` ("" = default) in scope at `el`, or undefined if unbound. */
export function lookupNamespace(el: XmlElement, prefix: string): string | undefined {
  for (let e: XmlElement | null = el; e; e = e.parent) {
    for (const d of e.nsDecls) if (d.prefix === prefix) return d.uri;
  }
  if (prefix === "") return "";
  if (prefix === "xml") return XML_NS;
  return undefined;
}

/** Child elements of `el`, in order. */
export function childElements(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) if (c.kind === "element") out.push(c);
  return out;
}

/** Concatenated text children of `el` (not descendants). */
export function textContent(el: XmlElement): string {
  let out = "";
  for (const c of el.children) if (c.kind === "text") out += c.value;
  return out;
}
