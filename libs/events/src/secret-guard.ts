import { MeshidError } from "@meshid/errors";

/** Text that marks PEM private keys of every flavour (PKCS#8, EC, RSA, encrypted). */
const SECRET_MARKERS = [/PRIVATE KEY/i];

/**
 * Throws MeshidError `invalid_argument` / `events.payload.secret` when `text` contains
 * private-key-looking material ("PRIVATE KEY"). Defence in depth: no meshid event carries a
 * key, so a hit is a bug upstream; the message never echoes the offending text.
 */
export function assertNoSecretMaterial(text: string, where: string): void {
  if (SECRET_MARKERS.some((marker) => marker.test(text))) {
    throw new MeshidError(
      "invalid_argument",
      "events.payload.secret",
      `refusing to publish an event whose ${where} looks like it contains a private key`,
    );
  }
}
