// MeshConfigService: Get for every authenticated caller, Update for admins.
import { type meshidProxyconfigV1 as pb } from "@meshid/proto";
import type { MeshConfigManager } from "../domain/mesh-config-manager";
import { requireAdmin, type ProxyConfigCallContext } from "./authz";
import { meshConfigToProto, meshConfigUpdateFromProto } from "./converters";

/** Creates the MeshConfigService implementation on `meshConfig`. */
export function createMeshConfigService(deps: {
  readonly meshConfig: Pick<MeshConfigManager, "current" | "update">;
}): pb.MeshConfigServiceImplementation<ProxyConfigCallContext> {
  return {
    getMeshConfig() {
      return Promise.resolve({ config: meshConfigToProto(deps.meshConfig.current()) });
    },
    async updateMeshConfig(request, context) {
      requireAdmin(context.caller);
      const result = await deps.meshConfig.update(
        {
          update: meshConfigUpdateFromProto(request),
          rotateNow: request.rotateNow,
          ...(request.expectedGeneration === undefined
            ? {}
            : { expectedGeneration: request.expectedGeneration }),
        },
        context.signal,
      );
      return { config: meshConfigToProto(result.config), warnings: [...result.warnings] };
    },
  };
}
