/**
 * Jest globalTeardown of the "integration" project: stops what global-setup.ts started (deploy/local
 * services or containers), in reverse order. Services that were external or already running before
 * the run are left alone, and ECOS_KEEP_SERVICES=1 leaves everything running for the next run.
 */
import { setupState, stopStarted } from "./global-setup";

export default async function globalTeardown(): Promise<void> {
  const state = setupState();
  if (state === undefined) return;
  await stopStarted(state, "test run finished");
}
