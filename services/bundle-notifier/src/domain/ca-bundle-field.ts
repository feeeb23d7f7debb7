// The `caBundle` fields of webhook configurations and APIServices.

/** Label selecting the webhook configurations whose caBundle the notifier keeps. */
export const WEBHOOK_LABEL_SELECTOR = "meshid.io/webhook=true";
/** Label selecting the APIServices whose caBundle the notifier keeps. */
export const APISERVICE_LABEL_SELECTOR = "meshid.io/apiservice=true";

/** A webhook entry of a Validating/MutatingWebhookConfiguration (only what is read here). */
export interface WebhookWithClientConfig {
  clientConfig?: { caBundle?: string };
}

/** The `caBundle` value for a PEM bundle: the PEM bytes in base64, as the API expects. */
export function caBundleFromPem(pem: string): string {
  return Buffer.from(pem, "utf8").toString("base64");
}

/**
 * The webhooks with `clientConfig.caBundle` set to `caBundle` on every entry, or `undefined`
 * when every entry already carries it (nothing to write). The input is not modified.
 */
export function webhooksWithCaBundle<W extends WebhookWithClientConfig>(
  webhooks: readonly W[] | undefined,
  caBundle: string,
): W[] | undefined {
  const list = webhooks ?? [];
  if (list.every((w) => w.clientConfig?.caBundle === caBundle)) return undefined;
  return list.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } }));
}
