// Health check for deploy/local/kafka.sh: exits 0 when the broker in ECOS_KAFKA_BROKERS answers a
// metadata request (kafkajs admin listTopics) and lists itself as a broker; 1 otherwise.
"use strict";
const { Kafka, logLevel } = require("kafkajs");

const brokers = (process.env.ECOS_KAFKA_BROKERS || "127.0.0.1:19092").split(",");
const kafka = new Kafka({
  clientId: "ecos-local-health",
  brokers,
  connectionTimeout: 1000,
  requestTimeout: 3000,
  retry: { retries: 0 },
  logLevel: logLevel.NOTHING,
});
const admin = kafka.admin();

async function main() {
  await admin.connect();
  try {
    await admin.listTopics();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) throw new Error("no broker registered yet");
    console.log(`ok: ${cluster.brokers.length} broker(s), cluster ${cluster.clusterId}`);
  } finally {
    await admin.disconnect();
  }
}

const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 8000);
main().then(
  () => {
    clearTimeout(timer);
    process.exit(0);
  },
  (err) => {
    console.error(String(err && err.message ? err.message : err));
    process.exit(1);
  },
);
