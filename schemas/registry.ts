/**
 * The schema registry port and its two implementations.
 *
 * - {@link InMemorySchemaRegistry}: deterministic, for unit tests, the in-process driver and benchmarks.
 * - {@link ConfluentSchemaRegistryClient}: any Confluent-compatible registry API (Confluent Schema
 *   Registry, Apicurio's `/apis/ccompat/v7`), through `@kafkajs/confluent-schema-registry`.
 *
 * Both speak Avro schema JSON text: what goes in with `register` is what a reader gets from
 * `schemaById`, so logical types, docs and defaults survive the round trip.
 */
import * as avsc from "avsc";
import {
  COMPATIBILITY,
  SchemaRegistry as KafkajsSchemaRegistry,
  SchemaType,
} from "@kafkajs/confluent-schema-registry";
import { EcosError } from "../processors/runtime/errors";
import { describeFailure, messageOf } from "./describe-error";
import type { ErrorCode, ErrorContext } from "../processors/runtime/errors";

/** The port every serde talks to. */
export interface SchemaRegistry {
  /**
   * Registers an Avro schema (JSON text) under a subject and returns its global id. Registering the
   * same schema again under the same subject returns the same id.
   *
   * @throws EcosError ECOS_SCHEMA_INCOMPATIBLE (refused by the subject's compatibility rule, or not a
   *   valid Avro schema), ECOS_REGISTRY_UNAVAILABLE (retriable).
   */
  register(subject: string, schema: string): Promise<number>;
  /**
   * The Avro schema JSON text registered with this id.
   *
   * @throws EcosError ECOS_SCHEMA_UNKNOWN, ECOS_REGISTRY_UNAVAILABLE (retriable).
   */
  schemaById(id: number): Promise<string>;
}

/** Confluent's compatibility levels. The product's subjects use BACKWARD (see schemas/README.md). */
export type CompatibilityMode =
  "NONE" | "BACKWARD" | "BACKWARD_TRANSITIVE" | "FORWARD" | "FORWARD_TRANSITIVE" | "FULL" | "FULL_TRANSITIVE";

export const DEFAULT_COMPATIBILITY: CompatibilityMode = "BACKWARD";

/** Parses schema text with avsc, mapping any failure to ECOS_SCHEMA_INCOMPATIBLE (the registry's 422). */
export function parseSchemaText(schema: string, context: ErrorContext = {}): avsc.Type {
  try {
    return avsc.Type.forSchema(JSON.parse(schema) as Parameters<typeof avsc.Type.forSchema>[0]);
  } catch (err) {
    const why = messageOf(err);
    throw new EcosError("ECOS_SCHEMA_INCOMPATIBLE", `not a valid Avro schema: ${why}`, {
      cause: err,
      context,
    });
  }
}

/** Why `reader` cannot read data written with `writer`, or undefined when it can. */
function resolutionFailure(reader: avsc.Type, writer: avsc.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    return messageOf(err);
  }
}

/**
 * Checks a candidate against a subject's versions (oldest first) the way Confluent does:
 * BACKWARD — the new schema reads data written with the latest; FORWARD — the latest reads data written
 * with the new one; FULL — both; *_TRANSITIVE — against every version, not only the latest.
 */
export function compatibilityFailure(
  mode: CompatibilityMode,
  candidate: avsc.Type,
  existing: readonly avsc.Type[],
): string | undefined {
  if (mode === "NONE" || existing.length === 0) return undefined;
  const against = mode.endsWith("_TRANSITIVE") ? existing : existing.slice(-1);
  const backward = mode.startsWith("BACKWARD") || mode.startsWith("FULL");
  const forward = mode.startsWith("FORWARD") || mode.startsWith("FULL");
  for (const old of against) {
    if (backward) {
      const why = resolutionFailure(candidate, old);
      if (why !== undefined) return `new schema cannot read data written with an existing version: ${why}`;
    }
    if (forward) {
      const why = resolutionFailure(old, candidate);
      if (why !== undefined)
        return `an existing version cannot read data written with the new schema: ${why}`;
    }
  }
  return undefined;
}

export interface InMemorySchemaRegistryOptions {
  /** Compatibility level of every subject unless set with `setCompatibility`. Default BACKWARD. */
  compatibility?: CompatibilityMode;
}

/**
 * A registry in a Map. Ids are handed out 1, 2, 3… in registration order, so a test that registers
 * the same schemas in the same order always sees the same ids. As in Confluent, an id belongs to the
 * schema text (whitespace aside), not to the subject: the same schema under two subjects has one id.
 */
export class InMemorySchemaRegistry implements SchemaRegistry {
  private readonly defaultCompatibility: CompatibilityMode;
  private readonly idByText = new Map<string, number>();
  private readonly schemaByIdMap = new Map<number, { text: string; type: avsc.Type }>();
  private readonly versionsBySubject = new Map<string, number[]>();
  private readonly compatibilityBySubject = new Map<string, CompatibilityMode>();
  private nextId = 1;

  constructor(options: InMemorySchemaRegistryOptions = {}) {
    this.defaultCompatibility = options.compatibility ?? DEFAULT_COMPATIBILITY;
  }

  setCompatibility(subject: string, mode: CompatibilityMode): void {
    this.compatibilityBySubject.set(subject, mode);
  }

  /** Schema ids registered under a subject, oldest version first. */
  versions(subject: string): readonly number[] {
    return this.versionsBySubject.get(subject) ?? [];
  }

  async register(subject: string, schema: string): Promise<number> {
    const type = parseSchemaText(schema, { subject });
    // Whitespace-insensitive key, as the registry normalises the JSON before comparing.
    const text = JSON.stringify(JSON.parse(schema));
    const versions = this.versionsBySubject.get(subject) ?? [];
    const known = this.idByText.get(text);
    if (known !== undefined && versions.includes(known)) return known;

    const mode = this.compatibilityBySubject.get(subject) ?? this.defaultCompatibility;
    const existing = versions.map((id) => this.schemaByIdMap.get(id)!.type);
    const why = compatibilityFailure(mode, type, existing);
    if (why !== undefined) {
      throw new EcosError(
        "ECOS_SCHEMA_INCOMPATIBLE",
        `subject ${subject} (${mode}) refused the schema: ${why}`,
        {
          context: { subject, compatibility: mode },
        },
      );
    }

    const id = known ?? this.nextId++;
    if (known === undefined) {
      this.idByText.set(text, id);
      this.schemaByIdMap.set(id, { text, type });
    }
    versions.push(id);
    this.versionsBySubject.set(subject, versions);
    return id;
  }

  async schemaById(id: number): Promise<string> {
    const entry = this.schemaByIdMap.get(id);
    if (entry === undefined) {
      throw new EcosError("ECOS_SCHEMA_UNKNOWN", `no schema with id ${id} in the registry`, {
        context: { schemaId: id },
      });
    }
    return entry.text;
  }
}

export interface ConfluentSchemaRegistryClientOptions {
  /**
   * Base URL of a Confluent-compatible API, without a trailing slash: e.g.
   * `http://127.0.0.1:8081` (Confluent) or `http://127.0.0.1:8080/apis/ccompat/v7` (Apicurio).
   */
  host: string;
  auth?: { username: string; password: string };
  /**
   * The level this client sets on a subject it creates and expects on a subject that exists (the
   * library refuses to register under a subject configured differently). Default BACKWARD.
   */
  compatibility?: CompatibilityMode;
  /** Timeout of each request this class makes without the library (schema by id, config). Default 10 s. */
  requestTimeoutMs?: number;
  /** Retries of the library's idempotent GETs on 5xx. Default 3. */
  retries?: number;
}

/** Node network failures as the library reports them (it turns them into a fake HTTP 400). */
const NETWORK_FAILURE =
  /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|socket hang up|Timeout \()/;

function statusOf(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "status" in err) {
    return typeof err.status === "number" ? err.status : undefined;
  }
  return undefined;
}

/** A first-time compatibility setting that lost the race to another client's identical one. */
const LEVEL_SET_MEANWHILE = /rule named 'COMPATIBILITY' already exists|compatibility.*already exists/i;

/** Maps an HTTP status (or a failure without one) to the product's error code. */
function codeFor(status: number | undefined, message: string, operation: "register" | "read"): ErrorCode {
  if (status === undefined) return "ECOS_REGISTRY_UNAVAILABLE";
  if (status === 400 && NETWORK_FAILURE.test(message)) return "ECOS_REGISTRY_UNAVAILABLE";
  if (status === 401 || status === 403) return "ECOS_CONFIG_INVALID";
  if (status === 408 || status === 429 || status >= 500) return "ECOS_REGISTRY_UNAVAILABLE";
  if (status === 404) return "ECOS_SCHEMA_UNKNOWN";
  if (status === 409 || status === 422) return "ECOS_SCHEMA_INCOMPATIBLE";
  return operation === "register" ? "ECOS_SCHEMA_INCOMPATIBLE" : "ECOS_SCHEMA_UNKNOWN";
}

/**
 * The port over a Confluent-compatible HTTP API. Registration goes through
 * `@kafkajs/confluent-schema-registry` (subject config check, first-time compatibility setting,
 * retries); the schema text by id and the subject config are plain HTTP so the exact registered text
 * comes back (the library would hand back a parsed avsc type, dropping logical types).
 */
export class ConfluentSchemaRegistryClient implements SchemaRegistry {
  readonly host: string;
  private readonly client: KafkajsSchemaRegistry;
  private readonly compatibility: CompatibilityMode;
  private readonly timeoutMs: number;
  private readonly authHeader: string | undefined;

  constructor(options: ConfluentSchemaRegistryClientOptions) {
    this.host = options.host.replace(/\/+$/, "");
    this.compatibility = options.compatibility ?? DEFAULT_COMPATIBILITY;
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.authHeader =
      options.auth === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}`;
    this.client = new KafkajsSchemaRegistry({
      host: this.host,
      clientId: "ecos-stream",
      retry: { retries: options.retries ?? 3 },
      ...(options.auth === undefined ? {} : { auth: options.auth }),
    });
  }

  async register(subject: string, schema: string): Promise<number> {
    parseSchemaText(schema, { subject }); // refuse locally what the registry would refuse with a 422
    try {
      try {
        return await this.registerOnce(subject, schema);
      } catch (err) {
        // Clients registering under a new subject at once each set its compatibility level first; the
        // registry refuses all but one (Apicurio: 409 "A rule named 'COMPATIBILITY' already exists").
        // The level now exists, so a second attempt checks it against ours and registers.
        if (!LEVEL_SET_MEANWHILE.test(messageOf(err))) throw err;
        return await this.registerOnce(subject, schema);
      }
    } catch (err) {
      const message = messageOf(err);
      // The library refuses a subject whose configured level differs from ours (not exported as a class).
      if ((err as { name?: unknown } | null)?.name === "ConfluentSchemaRegistryCompatibilityError") {
        throw new EcosError("ECOS_SCHEMA_INCOMPATIBLE", `subject ${subject}: ${message}`, {
          cause: err,
          context: { subject, registry: this.host },
        });
      }
      const code = codeFor(statusOf(err), message, "register");
      throw new EcosError(code, `registering under subject ${subject} at ${this.host}: ${message}`, {
        cause: err,
        context: { subject, registry: this.host, status: statusOf(err) },
      });
    }
  }

  private async registerOnce(subject: string, schema: string): Promise<number> {
    const { id } = await this.client.register(
      { type: SchemaType.AVRO, schema },
      { subject, compatibility: COMPATIBILITY[this.compatibility] },
    );
    return id;
  }

  async schemaById(id: number): Promise<string> {
    const body = await this.request("GET", `/schemas/ids/${id}`, undefined, "read", { schemaId: id });
    const { schema, schemaType } = body as { schema?: unknown; schemaType?: unknown };
    if (typeof schema !== "string") {
      throw new EcosError("ECOS_SCHEMA_UNKNOWN", `registry answered id ${id} without a schema`, {
        context: { schemaId: id, registry: this.host },
      });
    }
    if (schemaType !== undefined && schemaType !== "AVRO") {
      throw new EcosError(
        "ECOS_SCHEMA_UNKNOWN",
        `schema id ${id} is ${JSON.stringify(schemaType)}, not Avro`,
        {
          context: { schemaId: id, registry: this.host },
        },
      );
    }
    return schema;
  }

  /** Sets a subject's compatibility level through the config endpoint (creates the setting if absent). */
  async setCompatibility(subject: string, mode: CompatibilityMode): Promise<void> {
    await this.request("PUT", `/config/${encodeURIComponent(subject)}`, { compatibility: mode }, "register", {
      subject,
    });
  }

  private async request(
    method: "GET" | "PUT",
    path: string,
    body: unknown,
    operation: "register" | "read",
    context: ErrorContext,
  ): Promise<unknown> {
    const url = `${this.host}${path}`;
    const headers: Record<string, string> = {
      Accept: "application/vnd.schemaregistry.v1+json, application/json",
    };
    if (body !== undefined) headers["Content-Type"] = "application/vnd.schemaregistry.v1+json";
    if (this.authHeader !== undefined) headers["Authorization"] = this.authHeader;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new EcosError("ECOS_REGISTRY_UNAVAILABLE", `${method} ${url} failed: ${describeFailure(err)}`, {
        cause: err,
        context: { ...context, registry: this.host },
      });
    }
    const text = await response.text();
    if (!response.ok) {
      const code = codeFor(response.status, text, operation);
      throw new EcosError(code, `${method} ${url} answered ${response.status}: ${text.slice(0, 500)}`, {
        context: { ...context, registry: this.host, status: response.status },
      });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new EcosError(
        "ECOS_REGISTRY_UNAVAILABLE",
        `${method} ${url} answered non-JSON: ${text.slice(0, 200)}`,
        {
          cause: err,
          context: { ...context, registry: this.host },
        },
      );
    }
  }
}
