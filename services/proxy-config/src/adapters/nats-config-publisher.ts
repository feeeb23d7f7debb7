// config.updated on NATS (CloudEvents via @meshid/events), read by the CA.
import type { EventPublisher } from "@meshid/events";
import type { ConfigUpdatedPublisher } from "../ports";

/**
 * Creates the {@link ConfigUpdatedPublisher} on `events`: the payload carries every setting
 * (the CA's `settingsFromConfigUpdated` treats zero/empty as unchanged, so full values make the
 * CA converge on the MeshConfig) and the CloudEvents id de-duplicates replicas.
 */
export function createNatsConfigPublisher(events: EventPublisher): ConfigUpdatedPublisher {
  return {
    async publish(settings, options) {
      await events.publish(
        "config.updated",
        {
          mtlsMode: settings.mtlsMode,
          caTtlSeconds: settings.caTtlSeconds,
          svidTtlSeconds: settings.svidTtlSeconds,
          caKeyType: settings.caKeyType,
          rotateNow: options.rotateNow,
        },
        { id: options.id, subject: "meshconfig" },
      );
    },
  };
}
