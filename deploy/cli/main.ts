/**
 * The `ecos` command. Subcommands are added by later work; each parses its flags here, at the edge,
 * into the typed configuration (deploy/config/config.ts) and nothing below reads the environment.
 */
import { Command, InvalidArgumentError } from "commander";
import { EcosError } from "../../processors/runtime/errors";
import { loadConfig } from "../config/config";
import { registerAdtCommands } from "./adt";
import { registerCheckCommand } from "./check";
import { registerDspCommands } from "./dsp";
import { registerReportCommands } from "./report";
import { runDemo } from "./run";
import { registerSimCommand } from "./sim";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

const program = new Command();
program
  .name("ecos")
  .description(
    "ecos-stream: the DCC side of the Enduring Change of Supplier (SRV 6.23) process as a Kafka stream processor",
  )
  .showHelpAfterError();

program
  .command("run")
  .description(
    "Run the main job. With no --kafka: the embedded default (in-process driver, in-memory schema registry, " +
      "embedded ClickHouse) over synthetic traffic, then a summary. At this stage the job is the foundation's " +
      "demo topology: Avro meter readings counted per device and per supplier.",
  )
  .option("--records <n>", "synthetic records to generate", positiveInt, 200_000)
  .option("--devices <n>", "distinct devices in the synthetic traffic", positiveInt, 5_000)
  .option("--partitions <n>", "partitions of the input topic", positiveInt, 3)
  .option("--kafka <brokers>", "run on a Kafka cluster (comma-separated brokers) instead of in-process")
  .option("--registry <url>", "Confluent-compatible schema registry URL (default: in-memory)")
  .option("--application-id <id>", "consumer group and changelog prefix")
  .action(
    async (opts: {
      records: number;
      devices: number;
      partitions: number;
      kafka?: string;
      registry?: string;
      applicationId?: string;
    }) => {
      const config = loadConfig(process.env, {
        ...(opts.kafka !== undefined ? { kafkaBrokers: opts.kafka } : {}),
        ...(opts.registry !== undefined ? { registryUrl: opts.registry } : {}),
        ...(opts.applicationId !== undefined ? { applicationId: opts.applicationId } : {}),
      });
      await runDemo(config, { records: opts.records, devices: opts.devices, partitions: opts.partitions });
    },
  );

registerDspCommands(program);
registerCheckCommand(program);
registerAdtCommands(program);
registerReportCommands(program);
registerSimCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof EcosError) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
