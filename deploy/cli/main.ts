/**
 * The `ecos` command. Subcommands are added by later work; each parses its flags here, at the edge,
 * into the typed configuration (deploy/config/config.ts) and nothing below reads the environment.
 */
import { Command } from "commander";
import { EcosError } from "../../processors/runtime/errors";
import { registerAdtCommands } from "./adt";
import { registerCheckCommand } from "./check";
import { registerDspCommands } from "./dsp";
import { registerReportCommands } from "./report";
import { registerDemoCommand } from "./demo";
import { registerRunCommand } from "./run";
import { registerSimCommand } from "./sim";

const program = new Command();
program
  .name("ecos")
  .description(
    "ecos-stream: the DCC side of the Enduring Change of Supplier (SRV 6.23) process as a Kafka stream processor",
  )
  .showHelpAfterError();

registerRunCommand(program);
registerDemoCommand(program);
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
