// Keeps the agent's own SVID, its key and the last bundle it saw in the data dir, so a restarted
// agent reuses its identity instead of attesting again (a join token is single-use).
import { X509Certificate, createPrivateKey, randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { certificatesToPem, decodePem, encodePem, pemToCertificates } from "@meshid/pki";
import type { Logger } from "@meshid/telemetry";
import type { AgentBundle } from "../domain/types";
import type { AgentIdentityStore, PersistedAgentIdentity } from "../ports";

/** Mode of the data dir. */
export const AGENT_DATA_DIR_MODE = 0o700;
/** Mode of every file the store writes. */
export const AGENT_FILE_MODE = 0o600;
/** File name of the agent SVID chain (PEM, leaf first). */
export const AGENT_SVID_FILE = "agent-svid.pem";
/** File name of the agent SVID's private key (PKCS#8 PEM). */
export const AGENT_KEY_FILE = "agent-key.pem";
/** File name of the last bundle the agent saw (JSON). */
export const AGENT_BUNDLE_FILE = "bundle.json";

/** Error codes of the disk identity store. */
export const AgentIdentityStoreErrorCode = {
  dataDirUnusable: "agent.identity_store.data_dir_unusable",
  dataDirPermissions: "agent.identity_store.data_dir_permissions",
  keyFilePermissions: "agent.identity_store.key_file_permissions",
  corrupt: "agent.identity_store.corrupt",
} as const;

/** Dependencies of {@link createDiskAgentIdentityStore}. */
export interface DiskAgentIdentityStoreDeps {
  /** Data dir; created with mode 0700 when missing. */
  readonly dataDir: string;
  readonly logger: Logger;
}

interface BundleJson {
  readonly trustDomain: string;
  readonly sequenceNumber: number;
  readonly taintedAuthorityIds: readonly string[];
  readonly x509AuthoritiesPem: string;
}

function modeText(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

function failed(code: string, message: string, cause?: unknown): MeshidError {
  return new MeshidError("failed_precondition", code, message, { cause });
}

function bundleToJson(bundle: AgentBundle): string {
  const json: BundleJson = {
    trustDomain: bundle.trustDomain,
    sequenceNumber: bundle.sequenceNumber,
    taintedAuthorityIds: bundle.taintedAuthorityIds,
    x509AuthoritiesPem: certificatesToPem(bundle.x509AuthoritiesDer),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

function bundleFromJson(text: string): AgentBundle {
  const json = JSON.parse(text) as Partial<BundleJson>;
  if (
    typeof json.trustDomain !== "string" ||
    typeof json.sequenceNumber !== "number" ||
    !Array.isArray(json.taintedAuthorityIds) ||
    typeof json.x509AuthoritiesPem !== "string"
  ) {
    throw new Error("bundle file lacks fields");
  }
  return {
    trustDomain: json.trustDomain,
    sequenceNumber: json.sequenceNumber,
    taintedAuthorityIds: json.taintedAuthorityIds.map(String),
    x509AuthoritiesDer: pemToCertificates(json.x509AuthoritiesPem),
  };
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw failed(
      AgentIdentityStoreErrorCode.dataDirUnusable,
      `cannot stat ${path}: ${(err as Error).message}`,
      err,
    );
  }
}

/**
 * Writes `data` to `file` atomically: a temp file (mode 0600) in the same dir, fsync, rename,
 * then fsync of the dir so the rename survives a crash.
 */
export async function writeFileAtomic(file: string, dir: string, data: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await fs.open(tmp, "wx", AGENT_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  const dirHandle = await fs.open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/**
 * Creates the disk {@link AgentIdentityStore}: `<dataDir>/agent-svid.pem`, `agent-key.pem`
 * and `bundle.json`, each 0600 and written atomically; the data dir is 0700. `load` refuses a
 * data dir or key file open to group or others (MeshidError failed_precondition
 * `agent.identity_store.data_dir_permissions` / `key_file_permissions`), and returns undefined
 * (after a warning) when the files are incomplete, unparsable or the key does not match the
 * SVID — the agent then attests again.
 */
export function createDiskAgentIdentityStore(deps: DiskAgentIdentityStoreDeps): AgentIdentityStore {
  const { dataDir, logger } = deps;
  const svidFile = join(dataDir, AGENT_SVID_FILE);
  const keyFile = join(dataDir, AGENT_KEY_FILE);
  const bundleFile = join(dataDir, AGENT_BUNDLE_FILE);

  const ensureDataDir = async (create: boolean): Promise<boolean> => {
    let stat = await statOrUndefined(dataDir);
    if (stat === undefined) {
      if (!create) return false;
      await fs.mkdir(dataDir, { recursive: true, mode: AGENT_DATA_DIR_MODE });
      // mkdir's mode is filtered by the umask; set it exactly.
      await fs.chmod(dataDir, AGENT_DATA_DIR_MODE);
      stat = await fs.stat(dataDir);
    }
    if (!stat.isDirectory()) {
      throw failed(AgentIdentityStoreErrorCode.dataDirUnusable, `${dataDir} is not a directory`);
    }
    if ((stat.mode & 0o077) !== 0) {
      throw failed(
        AgentIdentityStoreErrorCode.dataDirPermissions,
        `agent data dir ${dataDir} has mode ${modeText(stat.mode)}: it must not be accessible by group or others (chmod 700 ${dataDir})`,
      );
    }
    return true;
  };

  return {
    async load() {
      if (!(await ensureDataDir(false))) return undefined;
      const [svidStat, keyStat, bundleStat] = await Promise.all(
        [svidFile, keyFile, bundleFile].map(statOrUndefined),
      );
      if (svidStat === undefined && keyStat === undefined && bundleStat === undefined) {
        return undefined;
      }
      if (keyStat !== undefined && (keyStat.mode & 0o077) !== 0) {
        throw failed(
          AgentIdentityStoreErrorCode.keyFilePermissions,
          `agent key file ${keyFile} has mode ${modeText(keyStat.mode)}: private keys must not be readable by group or others (chmod 600 ${keyFile})`,
        );
      }
      if (svidStat === undefined || keyStat === undefined || bundleStat === undefined) {
        logger.warn({ dataDir }, "agent identity files are incomplete; attesting again");
        return undefined;
      }
      try {
        const [svidPem, keyPem, bundleJson] = await Promise.all([
          fs.readFile(svidFile, "utf8"),
          fs.readFile(keyFile, "utf8"),
          fs.readFile(bundleFile, "utf8"),
        ]);
        const certChainDer = pemToCertificates(svidPem);
        const [keyDer] = decodePem(keyPem, "PRIVATE KEY");
        if (keyDer === undefined || certChainDer[0] === undefined) throw new Error("empty");
        const key = createPrivateKey({ key: Buffer.from(keyDer), format: "der", type: "pkcs8" });
        if (!new X509Certificate(certChainDer[0]).checkPrivateKey(key)) {
          throw new Error("the key does not match the SVID");
        }
        return { certChainDer, privateKeyPkcs8Der: keyDer, bundle: bundleFromJson(bundleJson) };
      } catch (err) {
        // Never include file contents: the key file holds key material.
        logger.warn(
          { dataDir, reason: (err as Error).message.slice(0, 200) },
          "agent identity files are unusable; attesting again",
        );
        return undefined;
      }
    },
    async save(identity: PersistedAgentIdentity) {
      await ensureDataDir(true);
      // Key first: a crash between the writes leaves a key/SVID mismatch, which load detects.
      await writeFileAtomic(
        keyFile,
        dataDir,
        encodePem("PRIVATE KEY", identity.privateKeyPkcs8Der),
      );
      await writeFileAtomic(svidFile, dataDir, certificatesToPem(identity.certChainDer));
      await writeFileAtomic(bundleFile, dataDir, bundleToJson(identity.bundle));
    },
  };
}
