/**
 * The DSP checks on a 6.23 that need reference data — the topology's share of the 22 checks (the
 * worker pool runs the others, workers/dsp/checks.ts). Pure functions of the worker's summary of the
 * request, the reference data and a policy; each returns its failures in check order.
 *
 * Split by where the data lives: the device-keyed stage has the inventory, the users directory and
 * the replay store (user-role … replacement-count except the two registration checks, and replay);
 * the MPxN-keyed stage has Registration Data (mpid-in-cert, registration-supplier).
 */
import type { DeviceSnapshot, DeviceStatus, DeviceType } from "../../schemas/event-records";
import type { DspCheckId } from "../../workers/dsp/checks";
import type { SignerSummary, Srv623Summary } from "../../workers/dsp/validate";
import type { DccUser } from "./csv";
import type { RegistrationHistory } from "./reference-data";
import { isoDate, registeredPeriodAsOf } from "./reference-data";

export interface TopologyFailure {
  readonly checkId: DspCheckId;
  readonly message: string;
}

export interface ReplacementCountRule {
  /** Least and most replacement certificates. */
  readonly min: number;
  readonly max: number;
  /** Slots that must be present. */
  readonly required: readonly ("digitalSigning" | "keyAgreement" | "keyAgreementTopUp")[];
}

export interface DspPolicy {
  /** Command Variants allowed for 6.23 (seed 003: 2 and 3 removed; only 1 appears anywhere). */
  readonly commandVariants: readonly number[];
  /** User Roles eligible for 6.23 by fuel: IS for an MPAN, GS for an MPRN (reference §2.1). */
  readonly eligibleRoles: { readonly ELECTRICITY: string; readonly GAS: string };
  /** Device types a 6.23 may target (reference §2.1). */
  readonly deviceTypes: readonly DeviceType[];
  /** SMI statuses that allow a change of supplier. [I] Commissioned only; [GAP] confirm in SRPD. */
  readonly deviceStatuses: readonly DeviceStatus[];
  /**
   * Replacement certificates per device type (reference §2.2 table, [B]): ESME and GSME need DS + KA
   * (KA top-up optional), GPF DS ([GAP] whether KA is required).
   */
  readonly replacementCount: Readonly<Partial<Record<DeviceType, ReplacementCountRule>>>;
}

export const DEFAULT_DSP_POLICY: DspPolicy = Object.freeze<DspPolicy>({
  commandVariants: [1],
  eligibleRoles: { ELECTRICITY: "IS", GAS: "GS" },
  deviceTypes: ["ESME", "GSME", "GPF"],
  deviceStatuses: ["COMMISSIONED"],
  replacementCount: {
    ESME: { min: 2, max: 3, required: ["digitalSigning", "keyAgreement"] },
    GSME: { min: 2, max: 3, required: ["digitalSigning", "keyAgreement"] },
    GPF: { min: 1, max: 3, required: ["digitalSigning"] },
  },
});

/** The fuel of an MPxN by its form: a 13-digit MPAN core is electricity, otherwise an MPRN (gas). */
export function fuelOf(mpxn: string): "ELECTRICITY" | "GAS" {
  return mpxn.length === 13 ? "ELECTRICITY" : "GAS";
}

/**
 * user-role and command-variant. Without a users directory (`users` undefined) the DSP has only the
 * certificate to go on, and user-role passes ([I]: the signer is an authentic xmlSign of that user).
 */
export function userChecks(
  request: Srv623Summary,
  users: ReadonlyMap<string, DccUser> | undefined,
  policy: DspPolicy = DEFAULT_DSP_POLICY,
): TopologyFailure[] {
  const out: TopologyFailure[] = [];
  if (users) {
    const user = users.get(request.businessOriginatorId.toUpperCase());
    const role = policy.eligibleRoles[fuelOf(request.importMpxn)];
    if (!user)
      out.push({
        checkId: "user-role",
        message: `User ${request.businessOriginatorId} is not a known DCC User`,
      });
    else if (user.status !== "ACTIVE")
      out.push({
        checkId: "user-role",
        message: `User ${user.userId} has status ${user.status}, not ACTIVE`,
      });
    else if (!user.roles.includes(role))
      out.push({
        checkId: "user-role",
        message: `User ${user.userId} has roles ${user.roles.join("|")}; SRV 6.23 for ${request.importMpxn} needs ${role}`,
      });
  }
  if (!policy.commandVariants.includes(request.commandVariant))
    out.push({
      checkId: "command-variant",
      message: `CommandVariant ${request.commandVariant} is not allowed for SRV 6.23 (allowed: ${policy.commandVariants.join(", ")})`,
    });
  return out;
}

/** device-known, device-type, device-status, mpxn-match and replacement-count against the inventory. */
export function deviceChecks(
  request: Srv623Summary,
  device: DeviceSnapshot | undefined,
  policy: DspPolicy = DEFAULT_DSP_POLICY,
): TopologyFailure[] {
  if (!device)
    return [
      {
        checkId: "device-known",
        message: `device ${request.businessTargetId} is not in the Smart Metering Inventory`,
      },
    ];
  const out: TopologyFailure[] = [];
  if (!policy.deviceTypes.includes(device.deviceType))
    out.push({
      checkId: "device-type",
      message: `device ${device.deviceId} is a ${device.deviceType}; SRV 6.23 targets ${policy.deviceTypes.join(", ")}`,
    });
  if (!policy.deviceStatuses.includes(device.deviceStatus))
    out.push({
      checkId: "device-status",
      message: `device ${device.deviceId} has SMI status ${device.deviceStatus}, not ${policy.deviceStatuses.join(" or ")}`,
    });
  if (device.importMpxn !== request.importMpxn)
    out.push({
      checkId: "mpxn-match",
      message: `ImportMPxN ${request.importMpxn} is not the MPxN ${device.importMpxn ?? "(none)"} the inventory holds for device ${device.deviceId}`,
    });
  const rule = policy.replacementCount[device.deviceType];
  if (rule) {
    const rc = request.replacementCertificates;
    const missing = rule.required.filter((slot) => rc[slot] === null);
    if (request.replacementCount < rule.min || request.replacementCount > rule.max || missing.length)
      out.push({
        checkId: "replacement-count",
        message: `a ${device.deviceType} needs ${rule.min}–${rule.max} replacement certificates including ${rule.required.join(" and ")}; the request has ${request.replacementCount}${missing.length ? ` without ${missing.join(", ")}` : ""}`,
      });
  }
  return out;
}

/**
 * mpid-in-cert and registration-supplier (seed 003 §3.3 items 3 and 4; reference §9.1), on the switch
 * date `day` (epoch days). [I] The signer certificate's MPIDs are the ones the DSP uses for the
 * Registration Data look-up: mpid-in-cert fails when the certificate carries none or (with a users
 * directory) one that is not the User's; registration-supplier fails unless the supplier registered
 * for the MPxN on the switch date is one of them.
 */
export function registrationChecks(
  request: Pick<Srv623Summary, "importMpxn" | "businessOriginatorId">,
  signer: SignerSummary,
  history: RegistrationHistory | undefined,
  day: number,
  users?: ReadonlyMap<string, DccUser>,
): { failures: TopologyFailure[]; registeredMpid: string | null } {
  const out: TopologyFailure[] = [];
  const user = users?.get(request.businessOriginatorId.toUpperCase());
  if (signer.mpids.length === 0)
    out.push({ checkId: "mpid-in-cert", message: "the signer certificate's Common Name carries no MPID" });
  else if (user) {
    const foreign = signer.mpids.filter((m) => !user.mpids.includes(m));
    if (foreign.length)
      out.push({
        checkId: "mpid-in-cert",
        message: `the signer certificate carries MPID ${foreign.join(" ")}, which is not an MPID of User ${user.userId}`,
      });
  }
  const period = registeredPeriodAsOf(history, day);
  const registeredMpid = period?.supplierMpid ?? null;
  if (!registeredMpid)
    out.push({
      checkId: "registration-supplier",
      message: `no supplier is registered for ${request.importMpxn} on ${isoDate(day)}`,
    });
  else if (!signer.mpids.includes(registeredMpid))
    out.push({
      checkId: "registration-supplier",
      message: `${request.importMpxn} is registered to ${registeredMpid} on ${isoDate(day)}, not to the signer's MPID ${signer.mpids.join(" ") || "(none)"}`,
    });
  return { failures: out, registeredMpid };
}
