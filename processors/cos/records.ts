/**
 * The contract between the CoS Parties, DSP dispatch, the device and S1SP simulators and the response
 * tracker (issue 5): topic names and the TypeScript shapes of their records (schemas/ecos.cos.*.avsc).
 * A unit test checks each interface's keys against its schema's fields.
 *
 *   cos.requests.ecos / .tcos ─▶ ecos-party ─▶ cos.authorisations ─▶ dsp-dispatch
 *     ├─ SMETS2+ ─▶ device.commands ─▶ device simulator ─▶ device.responses
 *     └─ SMETS1  ─▶ s1sp.requests   ─▶ S1SP simulator   ─▶ device.responses
 *   response-tracker: device.responses + request stages ─▶ duis.responses, duis.request-stages
 */

/** Schema names, as passed to `loadSchema`. */
export const COS_SCHEMAS = {
  cosAuthorisation: "ecos.cos.CosAuthorisation",
  deviceCommand: "ecos.cos.DeviceCommand",
  s1spRequest: "ecos.cos.S1spRequest",
  deviceResponse: "ecos.cos.DeviceResponse",
} as const;

export const COS_TOPICS = {
  /** Out of the CoS Parties: CoS Authorisation Responses (CosAuthorisation), key device id. */
  authorisations: "cos.authorisations",
  /** Out of dispatch, to SMETS2+ devices (DeviceCommand), key device id. */
  deviceCommands: "device.commands",
  /** Out of dispatch, to the SMETS1 Service Provider (S1spRequest), key device id. */
  s1spRequests: "s1sp.requests",
  /** From devices and the S1SP (DeviceResponse), key device id. */
  deviceResponses: "device.responses",
  /** DCC alerts (N63, N65, change-of-supplier alerts; ecos.duis.DccAlertEvent), key recipient User ID. */
  alerts: "duis.alerts",
} as const;

export type CosTopics = { -readonly [K in keyof typeof COS_TOPICS]: string };

export function cosTopics(prefix = ""): CosTopics {
  const out = {} as CosTopics;
  for (const [k, v] of Object.entries(COS_TOPICS)) out[k as keyof CosTopics] = prefix + v;
  return out;
}

export type CosParty = "ECOS" | "TCOS";
export type SmetsGeneration = "SMETS1" | "SMETS2";

/** A CoS Authorisation Response: the request authorised by a CoS Party, ready for DSP dispatch. */
export interface CosAuthorisation {
  /** DUIS RequestID. */
  requestId: string;
  /** Target device (BusinessTargetID, EUI-64). */
  deviceId: string;
  /** User ID of the gaining supplier (BusinessOriginatorID). */
  userId: string;
  /** Which CoS Party authorised it. */
  cosParty: CosParty;
  smetsGeneration: SmetsGeneration;
  /** Device type as in the inventory (e.g. ESME, GSME). */
  deviceType: string;
  /** timestamp-millis: when the DCC received the request. */
  receivedAt: number;
  /** timestamp-millis: when the CoS Party authorised it. */
  authorisedAt: number;
  /** The request as countersigned by the DSP and then by the CoS Party (XML bytes). */
  countersigned: Buffer;
  /** SMETS2+: the signed GBCS CS02b pre-command (0x0107, mode 7); null for SMETS1. */
  preCommand: Buffer | null;
  /** SMETS2+: the CoS Party's originator counter in the pre-command (decimal); null for SMETS1. */
  counter: string | null;
  /** timestamp-millis: execution time of a future-dated request; null when immediate. */
  executionAt: number | null;
  /** A cancellation of a future-dated request. */
  cancellation: boolean;
}

/** A command to a SMETS2+ device. */
export interface DeviceCommand {
  requestId: string;
  deviceId: string;
  /** The GBCS command as the device receives it (the CoS Party's signed pre-command). */
  command: Buffer;
  /** The originator counter of the command (decimal): how the device's answer is correlated. */
  counter: string;
  /** timestamp-millis: when dispatch sent it. */
  dispatchedAt: number;
  /** timestamp-millis: execution time of a future-dated command; null when immediate. */
  executionAt: number | null;
  cancellation: boolean;
}

/** A countersigned SMETS1 request to the S1SP. */
export interface S1spRequest {
  requestId: string;
  deviceId: string;
  userId: string;
  /** The request countersigned by the DSP and the CoS Party (XML bytes). */
  countersigned: Buffer;
  /** timestamp-millis: when dispatch sent it. */
  dispatchedAt: number;
  executionAt: number | null;
  cancellation: boolean;
}

export type DeviceResponseSource = "DEVICE" | "S1SP";
/** RESPONSE: the device's answer to the command; ALERT: a later alert (future-dated execution outcome). */
export type DeviceResponseKind = "RESPONSE" | "ALERT";

/** An answer from a device (GBCS bytes) or from the S1SP. */
export interface DeviceResponse {
  requestId: string;
  deviceId: string;
  source: DeviceResponseSource;
  kind: DeviceResponseKind;
  /** SUCCESS, ACCEPTED (future-dated held), FAILURE, or a refusal reason (e.g. SIGNATURE_INVALID). */
  status: string;
  /** Human-readable detail of a non-success status ("" on success). */
  detail: string;
  /** The GBCS Response/Alert bytes (DEVICE), or null (S1SP). */
  payload: Buffer | null;
  /** timestamp-millis: when the device or S1SP answered. */
  answeredAt: number;
}
