// RBAC rules of rendered objects flattened to comparable strings.
import type { KubeObject } from "./helm";

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly verbs: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/**
 * Every permission the (Cluster)Roles bound to `serviceAccount` grant, one string each:
 * `<scope> <group>/<resource> <verb>[ <name>]`, scope `cluster` or the Role's namespace, the
 * core group written as `core`. Sorted. Roles not bound to the account are ignored.
 * @throws Error on a rule the flattening cannot express (non-resource URLs).
 */
export function permissionsOf(objects: readonly KubeObject[], serviceAccount: string): string[] {
  const bound = new Set<string>();
  for (const binding of objects.filter(
    (o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding",
  )) {
    const subjects = (binding.subjects ?? []) as { kind: string; name: string }[];
    if (!subjects.some((s) => s.kind === "ServiceAccount" && s.name === serviceAccount)) continue;
    const ref = binding.roleRef as { kind: string; name: string };
    const scope = binding.kind === "RoleBinding" ? (binding.metadata.namespace ?? "") : "cluster";
    bound.add(`${ref.kind}/${ref.name}@${scope}`);
  }
  const out: string[] = [];
  for (const role of objects.filter((o) => o.kind === "Role" || o.kind === "ClusterRole")) {
    for (const key of bound) {
      const [refKind, rest] = key.split("/") as [string, string];
      const [name, scope] = rest.split("@") as [string, string];
      if (refKind !== role.kind || name !== role.metadata.name) continue;
      for (const rule of (role.rules ?? []) as PolicyRule[]) {
        if (rule.nonResourceURLs !== undefined)
          throw new Error(`${role.metadata.name}: non-resource rule`);
        for (const group of rule.apiGroups ?? []) {
          for (const resource of rule.resources ?? []) {
            for (const verb of rule.verbs) {
              const names = rule.resourceNames ?? [];
              const base = `${scope} ${group === "" ? "core" : group}/${resource} ${verb}`;
              if (names.length === 0) out.push(base);
              else for (const n of names) out.push(`${base} ${n}`);
            }
          }
        }
      }
    }
  }
  return [...new Set(out)].sort();
}
