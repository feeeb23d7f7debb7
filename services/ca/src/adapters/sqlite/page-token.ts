import { MeshidError } from "@meshid/errors";

/** Error code of a malformed or foreign page token. */
export const PAGE_TOKEN_CODE = "ca.store.page_token";
/** Error code of a page size out of range. */
export const PAGE_SIZE_CODE = "ca.store.page_size";
/** Page size used when a listing asks for none (or 0). */
export const DEFAULT_PAGE_SIZE = 500;
/** Largest page size a listing accepts. */
export const MAX_PAGE_SIZE = 1000;

/**
 * Returns the page size to use: {@link DEFAULT_PAGE_SIZE} for `undefined` or 0, else `size`.
 *
 * @throws MeshidError `ca.store.page_size` (invalid_argument) for a negative, fractional or
 *   larger than {@link MAX_PAGE_SIZE} size.
 */
export function resolvePageSize(size: number | undefined): number {
  if (size === undefined || size === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 0 || size > MAX_PAGE_SIZE) {
    throw new MeshidError(
      "invalid_argument",
      PAGE_SIZE_CODE,
      `page size ${size} is out of range: it must be an integer from 1 to ${MAX_PAGE_SIZE}`,
      { details: { pageSize: size, maxPageSize: MAX_PAGE_SIZE } },
    );
  }
  return size;
}

/**
 * Encodes a keyset cursor (the last key of a page) as an opaque token; `listing` names the
 * listing so that a token of one listing is refused by another.
 */
export function encodePageToken(listing: string, lastKey: string): string {
  return Buffer.from(JSON.stringify([listing, lastKey]), "utf8").toString("base64url");
}

/**
 * Decodes a token of {@link encodePageToken}; returns `undefined` for an empty or absent token
 * (the first page).
 *
 * @throws MeshidError `ca.store.page_token` (invalid_argument) when the token is malformed or
 *   belongs to another listing.
 */
export function decodePageToken(listing: string, token: string | undefined): string | undefined {
  if (token === undefined || token === "") return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 2 ||
    decoded[0] !== listing ||
    typeof decoded[1] !== "string"
  ) {
    throw new MeshidError("invalid_argument", PAGE_TOKEN_CODE, `invalid ${listing} page token`);
  }
  return decoded[1];
}
