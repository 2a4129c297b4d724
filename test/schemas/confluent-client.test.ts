/**
 * ConfluentSchemaRegistryClient against a small fake of the Confluent REST API (node:http only), for
 * the request shapes and the error mapping. The real registry is in
 * test/integration/schema-registry.test.ts.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { EcosError } from "../../processors/runtime/errors";
import { ConfluentSchemaRegistryClient } from "../../schemas/registry";

const SCHEMA = JSON.stringify({
  type: "record",
  name: "Probe",
  namespace: "ecos.test",
  doc: "d",
  fields: [{ name: "at", type: { type: "long", logicalType: "timestamp-millis" }, doc: "d" }],
});

interface FakeRegistry {
  url: string;
  requests: { method: string; url: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

async function fakeRegistry(): Promise<FakeRegistry> {
  const ids = new Map<string, number>();
  const texts = new Map<number, string>();
  const config = new Map<string, string>();
  const requests: FakeRegistry["requests"] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      const url = req.url ?? "";
      requests.push({ method: req.method ?? "", url, authorization: req.headers.authorization });
      const send = (status: number, payload: unknown): void => {
        res.writeHead(status, { "Content-Type": "application/vnd.schemaregistry.v1+json" });
        res.end(JSON.stringify(payload));
      };
      const m = /^\/ccompat(\/[^?]*)/.exec(url);
      const route = m?.[1] ?? "";
      let match: RegExpExecArray | null;
      if ((match = /^\/config\/([^/]+)$/.exec(route))) {
        const subject = decodeURIComponent(match[1]!);
        if (req.method === "PUT") {
          const { compatibility } = JSON.parse(body) as { compatibility: string };
          config.set(subject, compatibility);
          return send(200, { compatibility });
        }
        const level = config.get(subject);
        return level === undefined
          ? send(404, {
              error_code: 40408,
              message: `Subject '${subject}' does not have subject-level compatibility configured`,
            })
          : send(200, { compatibilityLevel: level });
      }
      if ((match = /^\/subjects\/([^/]+)\/versions$/.exec(route)) && req.method === "POST") {
        const subject = decodeURIComponent(match[1]!);
        if (subject.startsWith("locked")) return send(401, { error_code: 401, message: "Unauthorized" });
        if (subject.startsWith("conflict")) {
          return send(409, {
            error_code: 409,
            message: "Schema being registered is incompatible with an earlier schema",
          });
        }
        if (subject.startsWith("broken"))
          return send(500, { error_code: 50001, message: "Error in the backend" });
        const { schema } = JSON.parse(body) as { schema: string };
        let id = ids.get(schema);
        if (id === undefined) {
          id = ids.size + 1;
          ids.set(schema, id);
          texts.set(id, schema);
        }
        return send(200, { id });
      }
      if ((match = /^\/schemas\/ids\/(\d+)$/.exec(route))) {
        const text = texts.get(Number(match[1]));
        if (Number(match[1]) === 999)
          return send(200, { schema: "syntax = 'proto3';", schemaType: "PROTOBUF" });
        return text === undefined
          ? send(404, { error_code: 40403, message: "Schema not found" })
          : send(200, { schema: text });
      }
      send(404, { error_code: 404, message: `no route ${req.method} ${url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ccompat`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function failure(promise: Promise<unknown>): Promise<EcosError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EcosError);
    return err as EcosError;
  }
  throw new Error("expected a rejection");
}

describe("ConfluentSchemaRegistryClient (fake registry)", () => {
  let fake: FakeRegistry;
  beforeEach(async () => {
    fake = await fakeRegistry();
  });
  afterEach(() => fake.close());

  it("registers, returns the same id for the same schema, and gives back the exact text by id", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: `${fake.url}/` });
    const id = await client.register("readings-value", SCHEMA);
    expect(await client.register("readings-value", SCHEMA)).toBe(id);
    expect(await client.schemaById(id)).toBe(SCHEMA); // logicalType kept: not a re-export by avsc
  });

  it("sets BACKWARD on a subject it creates (the library's first-registration step)", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url });
    await client.register("fresh-value", SCHEMA);
    expect(fake.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      "GET /ccompat/config/fresh-value",
      "POST /ccompat/subjects/fresh-value/versions",
      "PUT /ccompat/config/fresh-value",
    ]);
  });

  it("maps 409 to ECOS_SCHEMA_INCOMPATIBLE", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url });
    const err = await failure(client.register("conflict-value", SCHEMA));
    expect(err.code).toBe("ECOS_SCHEMA_INCOMPATIBLE");
    expect(err.context).toMatchObject({ subject: "conflict-value", status: 409 });
  });

  it("maps a subject configured with another level to ECOS_SCHEMA_INCOMPATIBLE", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url });
    await client.setCompatibility("full-value", "FULL");
    const err = await failure(client.register("full-value", SCHEMA));
    expect(err.code).toBe("ECOS_SCHEMA_INCOMPATIBLE");
    expect(err.message).toMatch(/BACKWARD != FULL/);
    const matching = new ConfluentSchemaRegistryClient({ host: fake.url, compatibility: "FULL" });
    await expect(matching.register("full-value", SCHEMA)).resolves.toEqual(expect.any(Number));
  });

  it("refuses a schema that is not Avro before sending it", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url });
    expect((await failure(client.register("x-value", '{"type":"recrod"}'))).code).toBe(
      "ECOS_SCHEMA_INCOMPATIBLE",
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("maps an unknown id to ECOS_SCHEMA_UNKNOWN and a non-Avro id likewise", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url });
    const unknown = await failure(client.schemaById(77));
    expect(unknown).toMatchObject({ code: "ECOS_SCHEMA_UNKNOWN", retriable: false });
    expect(unknown.context).toMatchObject({ schemaId: 77, status: 404 });
    expect((await failure(client.schemaById(999))).message).toMatch(/"PROTOBUF", not Avro/);
  });

  it("maps 5xx to retriable ECOS_REGISTRY_UNAVAILABLE and 401 to ECOS_CONFIG_INVALID", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: fake.url, retries: 0 });
    expect(await failure(client.register("broken-value", SCHEMA))).toMatchObject({
      code: "ECOS_REGISTRY_UNAVAILABLE",
      retriable: true,
    });
    expect((await failure(client.register("locked-value", SCHEMA))).code).toBe("ECOS_CONFIG_INVALID");
  });

  it("sends basic auth on every request", async () => {
    const client = new ConfluentSchemaRegistryClient({
      host: fake.url,
      auth: { username: "u", password: "p" },
    });
    const id = await client.register("auth-value", SCHEMA);
    await client.schemaById(id);
    const expected = `Basic ${Buffer.from("u:p").toString("base64")}`;
    expect(fake.requests.map((r) => r.authorization)).toEqual(fake.requests.map(() => expected));
  });
});

describe("ConfluentSchemaRegistryClient (nothing listening)", () => {
  async function closedPortUrl(): Promise<string> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return `http://127.0.0.1:${port}`;
  }

  it("maps a refused connection to retriable ECOS_REGISTRY_UNAVAILABLE for register and schemaById", async () => {
    const client = new ConfluentSchemaRegistryClient({ host: await closedPortUrl(), retries: 0 });
    const onRegister = await failure(client.register("x-value", SCHEMA));
    expect(onRegister).toMatchObject({ code: "ECOS_REGISTRY_UNAVAILABLE", retriable: true });
    expect(onRegister.message).toMatch(/ECONNREFUSED/);
    const onFetch = await failure(client.schemaById(1));
    expect(onFetch).toMatchObject({ code: "ECOS_REGISTRY_UNAVAILABLE", retriable: true });
    expect(onFetch.message).toMatch(/ECONNREFUSED/);
  });
});
