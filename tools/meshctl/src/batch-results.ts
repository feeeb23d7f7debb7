import { errorKindForStatus } from "@meshid/grpc-kit";
import type { meshidCaV1 } from "@meshid/proto";
import { ExitCode, exitCodeForKind, type ExitCodeValue } from "./exit-codes";
import { statusName } from "./proto-format";

/** One item of a batch response, reduced to what meshctl prints. */
export interface BatchItem {
  /** What the item is about (an entry id or SPIFFE ID). */
  readonly label: string;
  readonly status: meshidCaV1.ItemStatus | undefined;
}

/** JSON shape of a failed item's status. */
export interface ItemStatusJson {
  readonly code: string;
  readonly message: string;
  readonly errorCode: string;
}

/** True when the item succeeded (absent status means OK). */
export function itemOk(status: meshidCaV1.ItemStatus | undefined): boolean {
  return status === undefined || status.code === 0;
}

/** The `--json` shape of an item status: null when OK. */
export function itemStatusJson(status: meshidCaV1.ItemStatus | undefined): ItemStatusJson | null {
  if (itemOk(status) || status === undefined) return null;
  return { code: statusName(status.code), message: status.message, errorCode: status.errorCode };
}

/** Human text of an item status: `ok` or `<message> (<CODE>)`. */
export function itemStatusText(status: meshidCaV1.ItemStatus | undefined): string {
  if (itemOk(status) || status === undefined) return "ok";
  return `${status.message} (${statusName(status.code)})`;
}

/**
 * The exit code of a batch: 0 when every item succeeded; the code of the failures when they all
 * map to the same one (e.g. 3 when every failure is NOT_FOUND); 1 otherwise.
 */
export function batchExitCode(items: readonly BatchItem[]): ExitCodeValue {
  const codes = new Set<ExitCodeValue>();
  for (const item of items) {
    if (!itemOk(item.status) && item.status !== undefined) {
      codes.add(exitCodeForKind(errorKindForStatus(item.status.code)));
    }
  }
  if (codes.size === 0) return ExitCode.ok;
  const [only] = [...codes];
  return codes.size === 1 && only !== undefined ? only : ExitCode.failed;
}
