/**
 * How drivers name the topics a topology does not name itself. Changelog and internal topic names
 * are part of the compatibility surface (renaming one is a migration).
 */
import type { Topology } from "./topology";

export const DEFAULT_DEAD_LETTER_TOPIC = "ecos.dead-letters";

export function changelogTopicName(applicationId: string, store: string): string {
  return `${applicationId}-${store}-changelog`;
}

export function internalTopicName(applicationId: string, logical: string): string {
  return `${applicationId}-${logical}`;
}

/** Maps a topology's logical topic name to the name on the wire. */
export function topicResolver(topology: Topology, applicationId: string): (logical: string) => string {
  return (logical) =>
    topology.internalTopics.has(logical) ? internalTopicName(applicationId, logical) : logical;
}
