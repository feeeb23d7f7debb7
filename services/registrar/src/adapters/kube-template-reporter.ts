// Reports unusable ClusterSPIFFEIDs and failed renderings: a Warning Event
// `TemplateRenderFailed` on the resource, a log line and a metric, once per distinct problem.
import { recordKubeEvent, type KubeClient } from "@meshid/kube";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import {
  CLUSTER_SPIFFE_ID_API_VERSION,
  CLUSTER_SPIFFE_ID_KIND,
  DEFAULT_TEMPLATE_NAME,
} from "../domain/cluster-spiffe-id";
import type { TemplateProblem, TemplateProblemReporter } from "../ports";

/** Reason of the Events. */
export const TEMPLATE_RENDER_FAILED_REASON = "TemplateRenderFailed";
/** Component named in the Events. */
export const REGISTRAR_COMPONENT = "meshid-registrar";
/** Counter of reported template problems (one per distinct problem). */
export const TEMPLATE_PROBLEMS_METRIC = "meshid_registrar_template_problems_total";
/** Distinct problems remembered to avoid repeating Events; the memory is reset beyond it. */
export const MAX_REMEMBERED_PROBLEMS = 10_000;
/**
 * Most Events recorded per ClusterSPIFFEID (a template failing for thousands of pods must not
 * flood the API server); further problems are still logged and counted.
 */
export const MAX_EVENTS_PER_TEMPLATE = 20;

/** Parameters of {@link createKubeTemplateReporter}. */
export interface CreateKubeTemplateReporterParams {
  /** The API client the Events are recorded with; the caller owns it. */
  readonly client: KubeClient;
  readonly logger: Logger;
}

/**
 * Creates the reporter: each distinct problem once per version of its resource, at most
 * {@link MAX_EVENTS_PER_TEMPLATE} Events per resource version. Events are recorded in the background; a failure to record one is
 * logged, never thrown (an Event is a report, never a reason to stop).
 */
export function createKubeTemplateReporter(
  params: CreateKubeTemplateReporterParams,
): TemplateProblemReporter {
  const counter = getMeter("@meshid/registrar").createCounter(TEMPLATE_PROBLEMS_METRIC, {
    description: "Distinct ClusterSPIFFEID problems reported (Event + log)",
  });
  const seen = new Set<string>();
  const eventsPerTemplate = new Map<string, number>();
  return {
    report(problem: TemplateProblem) {
      const resource = `${problem.templateUid}@${problem.templateRevision}`;
      const key = `${resource}|${problem.template}|${problem.message}`;
      if (seen.has(key)) return;
      if (seen.size >= MAX_REMEMBERED_PROBLEMS) {
        seen.clear();
        eventsPerTemplate.clear();
      }
      seen.add(key);
      counter.add(1, { template: problem.template });
      params.logger.warn(
        { template: problem.template, reason: problem.message },
        "ClusterSPIFFEID template failed",
      );
      if (problem.template === DEFAULT_TEMPLATE_NAME || problem.templateUid === "") return;
      const recorded = eventsPerTemplate.get(resource) ?? 0;
      if (recorded >= MAX_EVENTS_PER_TEMPLATE) return;
      eventsPerTemplate.set(resource, recorded + 1);
      recordKubeEvent(params.client, {
        involvedObject: {
          apiVersion: CLUSTER_SPIFFE_ID_API_VERSION,
          kind: CLUSTER_SPIFFE_ID_KIND,
          name: problem.template,
          uid: problem.templateUid,
        },
        type: "Warning",
        reason: TEMPLATE_RENDER_FAILED_REASON,
        message: problem.message.slice(0, 1024),
        component: REGISTRAR_COMPONENT,
      }).catch((err: unknown) => {
        params.logger.warn(
          {
            template: problem.template,
            [LogKeys.err]: err instanceof Error ? err.message : String(err),
          },
          "recording the Event failed",
        );
      });
    },
  };
}
