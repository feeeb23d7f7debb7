// One contract for every MeshConfigStore: memory, file and the Kubernetes resource (stand-in).
import { join } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { isMeshidError } from "@meshid/errors";
import { createKubeClient } from "@meshid/kube";
import { createNoopLogger } from "@meshid/telemetry";
import {
  createTempDir,
  describeContract,
  startKubeApiServer,
  type ContractAdapter,
} from "@meshid/testkit";
import { createFileMeshConfigStore } from "../src/adapters/file-mesh-config-store";
import { createKubeMeshConfigStore } from "../src/adapters/kube-mesh-config-store";
import { STORE_CONFLICT_CODE, type MeshConfigDocument, type MeshConfigStore } from "../src/ports";
import { createMemoryMeshConfigStore } from "../src/testing/memory-mesh-config-store";

jest.setTimeout(60_000);

/** A store plus a way to change it behind the store's back (kubectl edit, hand edit). */
interface Subject {
  readonly store: MeshConfigStore;
  editElsewhere(mtlsMode: string): Promise<void>;
}

const memory: ContractAdapter<Subject> = {
  name: "memory",
  create() {
    const store = createMemoryMeshConfigStore();
    return Promise.resolve({
      subject: {
        store,
        editElsewhere: (mtlsMode) => {
          store.edit({ ...store.peek()?.spec, mtlsMode });
          return Promise.resolve();
        },
      },
      cleanup: () => Promise.resolve(),
    });
  },
};

const file: ContractAdapter<Subject> = {
  name: "file",
  async create() {
    const dir = await createTempDir("proxy-config-store");
    const path = join(dir.path, "conf", "meshconfig.yaml");
    const store = createFileMeshConfigStore({
      path,
      logger: createNoopLogger(),
      pollIntervalMs: 50,
    });
    return {
      subject: {
        store,
        async editElsewhere(mtlsMode) {
          const { readFile, writeFile } = await import("node:fs/promises");
          const text = await readFile(path, "utf8");
          await writeFile(path, text.replace(/mtlsMode: \w+/, `mtlsMode: ${mtlsMode}`));
        },
      },
      cleanup: () => dir.cleanup(),
    };
  },
};

const kube: ContractAdapter<Subject> = {
  name: "kubernetes",
  async create() {
    const server = await startKubeApiServer();
    const client = createKubeClient({ kubeconfigYaml: server.kubeConfigYaml() });
    const store = createKubeMeshConfigStore({
      client,
      name: "meshid",
      logger: createNoopLogger(),
    });
    const custom = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const ref = { group: "meshid.io", version: "v1alpha1", plural: "meshconfigs", name: "meshid" };
    return {
      subject: {
        store,
        async editElsewhere(mtlsMode) {
          const current = (await custom.getClusterCustomObject(ref)) as { spec: object };
          await custom.replaceClusterCustomObject({
            ...ref,
            body: { ...current, spec: { ...current.spec, mtlsMode } },
          });
        },
      },
      cleanup: async () => {
        client.close();
        await server.stop();
      },
    };
  },
};

async function nextMatching(
  iterator: AsyncIterator<MeshConfigDocument>,
  match: (d: MeshConfigDocument) => boolean,
): Promise<MeshConfigDocument> {
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) throw new Error("watch ended");
    if (match(next.value)) return next.value;
  }
}

describeContract("mesh config store", [memory, file, kube], (get) => {
  it("mesh config store – read creates the defaults at generation 1 and returns them again", async () => {
    const { store } = get();
    const first = await store.read();
    expect(first.spec).toEqual({
      mtlsMode: "permissive",
      caTtl: "720h",
      svidTtl: "1h",
      caKeyType: "ec-p256",
    });
    expect(first.generation).toBe(1);
    expect(await store.read()).toEqual(first);
  });

  it("mesh config store – write with the version read bumps the generation", async () => {
    const { store } = get();
    const first = await store.read();
    const spec = { mtlsMode: "strict", caTtl: "48h", svidTtl: "1h", caKeyType: "ec-p384" };
    const updatedAt = new Date("2026-01-02T03:04:05.000Z");
    const written = await store.write({ spec, expectedVersion: first.version, updatedAt });
    expect(written).toMatchObject({ spec, generation: 2, updatedAt });
    expect(written.version).not.toBe(first.version);
    expect(await store.read()).toEqual(written);
  });

  it("mesh config store – a write with a stale version is a conflict and changes nothing", async () => {
    const { store } = get();
    const first = await store.read();
    const spec = { mtlsMode: "off", caTtl: "720h", svidTtl: "1h", caKeyType: "ec-p256" };
    await store.write({ spec, expectedVersion: first.version, updatedAt: new Date() });
    const now = await store.read();
    const err: unknown = await store
      .write({
        spec: { ...spec, mtlsMode: "strict" },
        expectedVersion: first.version,
        updatedAt: new Date(),
      })
      .catch((e: unknown) => e);
    expect(isMeshidError(err, STORE_CONFLICT_CODE)).toBe(true);
    expect(await store.read()).toEqual(now);
  });

  it("mesh config store – watch reports the current document, then edits made elsewhere", async () => {
    const subject = get();
    await subject.store.read();
    const controller = new AbortController();
    const iterator = subject.store.watch(controller.signal)[Symbol.asyncIterator]();
    try {
      await nextMatching(iterator, (d) => d.spec.mtlsMode === "permissive");
      await subject.editElsewhere("strict");
      const edited = await nextMatching(iterator, (d) => d.spec.mtlsMode === "strict");
      expect(edited.generation).toBeGreaterThanOrEqual(1);
    } finally {
      controller.abort();
      await iterator.return?.();
    }
  });
});
