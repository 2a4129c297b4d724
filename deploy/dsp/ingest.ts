/**
 * DUIS ingest: a supplier's system POSTs the raw signed XML; the endpoint answers synchronously once
 * the bytes are durable in Kafka (duis.requests, key = the target device id from the RequestID, record
 * timestamp = time of receipt) with a DUIS-style acknowledgement (I99), or with an error. Validation
 * happens downstream (dsp-validate); its response goes to duis.responses.
 *
 * Refused here, synchronously, and never written: a body over `maxBodyBytes` (413), an empty body or
 * one without a readable RequestID (400: a request that cannot be named cannot be answered later), a
 * method other than POST (405). Kafka not accepting the write: 503 with Retry-After.
 */
import * as http from "node:http";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { EcosError, type ErrorCode } from "../../processors/runtime/errors";
import { partitionForKey } from "../../processors/runtime/partitioner";
import { sniffRequestId } from "../../processors/dsp/topology";

/** Where accepted requests are made durable. Resolves once the write is acknowledged. */
export interface RequestLog {
  append(key: string | null, bytes: Buffer, receivedAt: number): Promise<void>;
  close(): Promise<void>;
}

/** The Kafka request log: an idempotent producer, acks from all in-sync replicas. */
export class KafkaRequestLog implements RequestLog {
  private readonly producer: Producer;
  private partitions: number | undefined;
  private connected: Promise<void> | undefined;
  constructor(
    private readonly brokers: readonly string[],
    private readonly topic: string,
  ) {
    const kafka = new Kafka({ clientId: "ecos-ingest", brokers: [...brokers], logLevel: logLevel.NOTHING });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.kafka = kafka;
  }
  private readonly kafka: Kafka;

  private async ready(): Promise<void> {
    this.connected ??= (async () => {
      await this.producer.connect();
      const admin = this.kafka.admin();
      await admin.connect();
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [this.topic] });
        this.partitions = meta.topics[0]?.partitions.length ?? 1;
      } finally {
        await admin.disconnect();
      }
    })();
    await this.connected;
  }

  async append(key: string | null, bytes: Buffer, receivedAt: number): Promise<void> {
    try {
      await this.ready();
      await this.producer.send({
        topic: this.topic,
        acks: -1,
        messages: [
          {
            key,
            value: bytes,
            timestamp: String(receivedAt),
            // The drivers' partitioner (murmur2, as Kafka's Java client), so the request meets its device.
            ...(key !== null ? { partition: partitionForKey(Buffer.from(key), this.partitions ?? 1) } : {}),
          },
        ],
      });
    } catch (err) {
      this.connected = undefined;
      throw new EcosError(
        "ECOS_INGEST_UNAVAILABLE",
        `could not write to ${this.topic}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}

/** An in-memory request log (tests, demos). */
export class MemoryRequestLog implements RequestLog {
  readonly records: Array<{ key: string | null; bytes: Buffer; receivedAt: number }> = [];
  fail: Error | null = null;
  async append(key: string | null, bytes: Buffer, receivedAt: number): Promise<void> {
    if (this.fail) throw new EcosError("ECOS_INGEST_UNAVAILABLE", this.fail.message);
    this.records.push({ key, bytes, receivedAt });
  }
  async close(): Promise<void> {}
}

export interface IngestOptions {
  readonly log: RequestLog;
  /** Largest body accepted (default 512 KiB, the parser's limit: anything bigger fails `xml` anyway). */
  readonly maxBodyBytes?: number;
  readonly now?: () => number;
}

const SR = "http://www.dccinterface.co.uk/ServiceUserGateway";
const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The DUIS-style synchronous acknowledgement (response code I99: received, to be processed). */
export function acknowledgementXml(requestId: string, at: number): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<sr:Acknowledgement xmlns:sr="${SR}"><sr:Header><sr:RequestID>${esc(requestId)}</sr:RequestID>` +
    `<sr:ResponseCode>I99</sr:ResponseCode><sr:ResponseDateTime>${new Date(at).toISOString()}</sr:ResponseDateTime>` +
    `</sr:Header></sr:Acknowledgement>\n`
  );
}

export function ingestErrorXml(
  code: ErrorCode,
  message: string,
  requestId: string | null,
  at: number,
): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<sr:IngestError xmlns:sr="${SR}"><sr:Header>` +
    (requestId ? `<sr:RequestID>${esc(requestId)}</sr:RequestID>` : "") +
    `<sr:ErrorCode>${code}</sr:ErrorCode><sr:ErrorText>${esc(message)}</sr:ErrorText>` +
    `<sr:ResponseDateTime>${new Date(at).toISOString()}</sr:ResponseDateTime></sr:Header></sr:IngestError>\n`
  );
}

/** The request handler (usable with any node:http server). */
export function ingestHandler(opts: IngestOptions): http.RequestListener {
  const max = opts.maxBodyBytes ?? 512 * 1024;
  const now = opts.now ?? Date.now;
  return (req, res) => {
    const reply = (status: number, body: string, headers: Record<string, string> = {}): void => {
      if (res.headersSent) return;
      res.writeHead(status, { "content-type": "application/xml; charset=utf-8", ...headers });
      res.end(body);
    };
    const refuse = (
      status: number,
      code: ErrorCode,
      message: string,
      requestId: string | null = null,
    ): void =>
      reply(
        status,
        ingestErrorXml(code, message, requestId, now()),
        status === 413 ? { connection: "close" } : {},
      );
    if (req.method !== "POST") return refuse(405, "ECOS_INGEST_REJECTED", "only POST is accepted");
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > max) {
      refuse(413, "ECOS_INGEST_REJECTED", `body of ${declared} bytes is over the ${max} accepted`);
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) {
        over = true;
        refuse(413, "ECOS_INGEST_REJECTED", `body is over the ${max} bytes accepted`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (over) return;
      const receivedAt = now();
      const body = Buffer.concat(chunks, size);
      if (body.length === 0)
        return refuse(400, "ECOS_INGEST_REJECTED", "empty body: POST the signed DUIS XML");
      const id = sniffRequestId(body);
      if (!id)
        return refuse(
          400,
          "ECOS_INGEST_REJECTED",
          "no sr:RequestID in the first 8 KiB: the request cannot be answered",
        );
      opts.log.append(id.deviceId || null, body, receivedAt).then(
        () => reply(200, acknowledgementXml(id.requestId, now())),
        (err: unknown) => {
          const e = err instanceof EcosError ? err : new EcosError("ECOS_INGEST_UNAVAILABLE", String(err));
          reply(503, ingestErrorXml(e.code, e.message, id.requestId, now()), { "retry-after": "1" });
        },
      );
    });
  };
}

/** Starts the ingest server; resolves with its address once listening. */
export async function startIngestServer(
  opts: IngestOptions & { readonly port: number; readonly host?: string },
): Promise<{ server: http.Server; url: string; close(): Promise<void> }> {
  const server = http.createServer(ingestHandler(opts));
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    server,
    url: `http://${opts.host ?? "127.0.0.1"}:${port}/duis`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
