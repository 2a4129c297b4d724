/**
 * The Service Reference Variants (SRVs) an ADT file may name, and which of them give rise to a
 * Critical Command. Data, not logic: change the table, not the code.
 *
 * Source: the DUIS Service Request matrix as published in SmartDCCInnovation/duis-parser
 * (`src/duis-request-matrix.json`, its "Critical" column) — evidence [A] for the flag values.
 * Reading "Critical: Yes" as "gives rise to a Critical Command" in the TADP sense is [I]; confirm the
 * TADP's own list [GAP] (reference §6, §12 question 5).
 *
 * Two deliberate departures from the matrix, both [I]:
 * - 6.23 is marked critical here although the matrix says "No": its GBCS command (CS02b, 0x0107) is a
 *   Critical Command, signed by the CoS Party instead of the User, which is why DUIS does not return
 *   it to the User for signing. The seed rules (seed 003 §3.2) only make sense with 6.23 covered: "as a
 *   minimum there will always be an ADT value for each SRV that gives rise to a critical command", and
 *   the ECoS Party applies a 1440-minute threshold to every 6.23.
 * - 7.16 "Limit APC Level" is critical in the matrix but has no eligible User Role there; it is kept
 *   (a zero default for it is harmless) and tagged [GAP].
 * 8.13 "Return Local Command Response" is kept as a known SRV although seed 003 §3.5 says DUIS 5.1
 * drops it with 6.23's local Command Variants [B]/[GAP]: whether it is gone for every SRV is not known.
 */

/** Evidence label, as in the domain reference §0. */
export type Evidence = "[A]" | "[B]" | "[I]" | "[GAP]";

export interface SrvDefinition {
  /** Service Reference Variant, e.g. "6.23", "1.1.1". */
  readonly srv: string;
  readonly name: string;
  /** Gives rise to a Critical Command: gets a zero 1440-minute ADT when a file has no entry for it. */
  readonly critical: boolean;
  /** How sure the `critical` flag is. */
  readonly evidence: Evidence;
}

const A = "[A]" as const;

/** Every SRV of the DUIS Service Request matrix. */
export const SRV_CATALOGUE: readonly SrvDefinition[] = Object.freeze([
  { srv: "1.1.1", name: "Update Import Tariff (Primary Element)", critical: true, evidence: A },
  { srv: "1.1.2", name: "Update Import Tariff (Secondary Element)", critical: true, evidence: A },
  { srv: "1.2.1", name: "Update Price (Primary Element)", critical: true, evidence: A },
  { srv: "1.2.2", name: "Update Price (Secondary Element)", critical: true, evidence: A },
  { srv: "1.5", name: "Update Meter Balance", critical: true, evidence: A },
  { srv: "1.6", name: "Update Payment Mode", critical: true, evidence: A },
  { srv: "1.7", name: "Reset Tariff Block Counter Matrix", critical: true, evidence: A },
  { srv: "2.1", name: "Update Prepay Configuration", critical: true, evidence: A },
  { srv: "2.2", name: "Top Up Device", critical: false, evidence: A },
  { srv: "2.3", name: "Update Debt", critical: true, evidence: A },
  { srv: "2.5", name: "Activate Emergency Credit", critical: true, evidence: A },
  { srv: "3.1", name: "Display Message", critical: false, evidence: A },
  { srv: "3.2", name: "Restrict Access For Change Of Tenancy", critical: false, evidence: A },
  { srv: "3.3", name: "Clear Event Log", critical: false, evidence: A },
  { srv: "3.4", name: "Update Supplier Name", critical: false, evidence: A },
  { srv: "3.5", name: "Disable Privacy PIN", critical: false, evidence: A },
  { srv: "4.1.1", name: "Read Instantaneous Import Registers", critical: false, evidence: A },
  { srv: "4.1.2", name: "Read Instantaneous Import TOU Matrices", critical: false, evidence: A },
  { srv: "4.1.3", name: "Read Instantaneous Import TOU With Blocks Matrices", critical: false, evidence: A },
  { srv: "4.1.4", name: "Read Instantaneous Import Block Counters", critical: false, evidence: A },
  { srv: "4.2", name: "Read Instantaneous Export Registers", critical: false, evidence: A },
  { srv: "4.3", name: "Read Instantaneous Prepay Values", critical: false, evidence: A },
  {
    srv: "4.4.2",
    name: "Retrieve Change Of Mode / Tariff Triggered Billing Data Log",
    critical: false,
    evidence: A,
  },
  {
    srv: "4.4.3",
    name: "Retrieve Billing Calendar Triggered Billing Data Log",
    critical: false,
    evidence: A,
  },
  {
    srv: "4.4.4",
    name: "Retrieve Billing Data Log (Payment Based Debt Payments)",
    critical: false,
    evidence: A,
  },
  { srv: "4.4.5", name: "Retrieve Billing Data Log (Prepayment Credits)", critical: false, evidence: A },
  { srv: "4.6.1", name: "Retrieve Import Daily Read Log", critical: false, evidence: A },
  { srv: "4.6.2", name: "Retrieve Export Daily Read Log", critical: false, evidence: A },
  { srv: "4.8.1", name: "Read Active Import Profile Data", critical: false, evidence: A },
  { srv: "4.8.2", name: "Read Reactive Import Profile Data", critical: false, evidence: A },
  { srv: "4.8.3", name: "Read Export Profile Data", critical: false, evidence: A },
  { srv: "4.10", name: "Read Network Data", critical: false, evidence: A },
  { srv: "4.11.1", name: "Read Tariff (Primary Element)", critical: false, evidence: A },
  { srv: "4.11.2", name: "Read Tariff (Secondary Element)", critical: false, evidence: A },
  { srv: "4.12.1", name: "Read Maximum Demand Import Registers", critical: false, evidence: A },
  { srv: "4.12.2", name: "Read Maximum Demand Export Registers", critical: false, evidence: A },
  { srv: "4.13", name: "Read Prepayment Configuration", critical: false, evidence: A },
  { srv: "4.14", name: "Read Prepayment Daily Read Log", critical: false, evidence: A },
  { srv: "4.15", name: "Read Load Limit Data", critical: false, evidence: A },
  { srv: "4.16", name: "Read Active Power Import", critical: false, evidence: A },
  { srv: "4.17", name: "Retrieve Daily Consumption Log", critical: false, evidence: A },
  { srv: "4.18", name: "Read Meter Balance", critical: false, evidence: A },
  { srv: "5.1", name: "Create Schedule", critical: false, evidence: A },
  { srv: "5.2", name: "Read Schedule", critical: false, evidence: A },
  { srv: "5.3", name: "Delete Schedule", critical: false, evidence: A },
  { srv: "6.2.1", name: "Read Device Configuration (Voltage)", critical: false, evidence: A },
  { srv: "6.2.2", name: "Read Device Configuration (Randomisation)", critical: false, evidence: A },
  { srv: "6.2.3", name: "Read Device Configuration (Billing Calendar)", critical: false, evidence: A },
  { srv: "6.2.4", name: "Read Device Configuration (Identity Exc MPxN)", critical: false, evidence: A },
  {
    srv: "6.2.5",
    name: "Read Device Configuration (Instantaneous Power Thresholds)",
    critical: false,
    evidence: A,
  },
  { srv: "6.2.7", name: "Read Device Configuration (MPxN)", critical: false, evidence: A },
  { srv: "6.2.8", name: "Read Device Configuration (Gas)", critical: false, evidence: A },
  { srv: "6.2.9", name: "Read Device Configuration (Payment Mode)", critical: false, evidence: A },
  {
    srv: "6.2.10",
    name: "Read Device Configuration (Event and Alert Behaviours)",
    critical: false,
    evidence: A,
  },
  {
    srv: "6.4.1",
    name: "Update Device Configuration (Load Limiting General Settings)",
    critical: true,
    evidence: A,
  },
  {
    srv: "6.4.2",
    name: "Update Device Configuration (Load Limiting Counter Reset)",
    critical: false,
    evidence: A,
  },
  { srv: "6.5", name: "Update Device Configuration (Voltage)", critical: false, evidence: A },
  { srv: "6.6", name: "Update Device Configuration (Gas Conversion)", critical: true, evidence: A },
  { srv: "6.7", name: "Update Device Configuration (Gas Flow)", critical: true, evidence: A },
  { srv: "6.8", name: "Update Device Configuration (Billing Calendar)", critical: true, evidence: A },
  { srv: "6.11", name: "Synchronise Clock", critical: true, evidence: A },
  {
    srv: "6.12",
    name: "Update Device Configuration (Instantaneous Power Threshold)",
    critical: false,
    evidence: A,
  },
  { srv: "6.13", name: "Read Event Or Security Log", critical: false, evidence: A },
  {
    srv: "6.14.1",
    name: "Update Device Configuration (Auxiliary Load Control Description)",
    critical: true,
    evidence: A,
  },
  {
    srv: "6.14.2",
    name: "Update Device Configuration (Auxiliary Load Control Scheduler)",
    critical: true,
    evidence: A,
  },
  {
    srv: "6.14.3",
    name: "Update Device Configuration (Auxiliary Controller Scheduler)",
    critical: true,
    evidence: A,
  },
  { srv: "6.15.1", name: "Update Security Credentials (KRP)", critical: true, evidence: A },
  { srv: "6.15.2", name: "Update Security Credentials (Device)", critical: true, evidence: A },
  { srv: "6.17", name: "Issue Security Credentials", critical: true, evidence: A },
  { srv: "6.18.1", name: "Set Maximum Demand Configurable Time Period", critical: false, evidence: A },
  { srv: "6.18.2", name: "Reset Maximum Demand Registers", critical: false, evidence: A },
  { srv: "6.20.1", name: "Set Device Configuration (Import MPxN)", critical: false, evidence: A },
  { srv: "6.20.2", name: "Set Device Configuration (Export MPAN)", critical: false, evidence: A },
  { srv: "6.21", name: "Request Handover Of DCC Controlled Device", critical: false, evidence: A },
  { srv: "6.22", name: "Configure Alert Behaviour", critical: false, evidence: A },
  { srv: "6.23", name: "Update Security Credentials (CoS)", critical: true, evidence: "[I]" },
  { srv: "6.24.1", name: "Retrieve Device Security Credentials (KRP)", critical: false, evidence: A },
  { srv: "6.24.2", name: "Retrieve Device Security Credentials (Device)", critical: true, evidence: A },
  { srv: "6.25", name: "Set Electricity Supply Tamper State", critical: true, evidence: A },
  {
    srv: "6.26",
    name: "Update Device Configuration (daily resetting of Tariff Block Counter Matrix)",
    critical: true,
    evidence: A,
  },
  {
    srv: "6.27",
    name: "Update Device Configuration (RMS Voltage Counter Reset)",
    critical: false,
    evidence: A,
  },
  { srv: "6.28", name: "Set CHF Sub GHz Configuration", critical: false, evidence: A },
  { srv: "6.29", name: "Request CHF Sub GHz Channel Scan", critical: false, evidence: A },
  { srv: "6.30", name: "Read CHF Sub GHz Configuration", critical: false, evidence: A },
  { srv: "6.31", name: "Read CHF Sub GHz Channel", critical: false, evidence: A },
  { srv: "6.32", name: "Read CHF Sub GHz Channel Log", critical: false, evidence: A },
  { srv: "7.1", name: "Enable Supply", critical: true, evidence: A },
  { srv: "7.2", name: "Disable Supply", critical: true, evidence: A },
  { srv: "7.3", name: "Arm Supply", critical: true, evidence: A },
  { srv: "7.4", name: "Read Supply Status", critical: false, evidence: A },
  { srv: "7.5", name: "Activate Auxiliary Load", critical: true, evidence: A },
  { srv: "7.6", name: "Deactivate Auxiliary Load", critical: true, evidence: A },
  { srv: "7.7", name: "Read Auxiliary Load Switch Data", critical: false, evidence: A },
  { srv: "7.8", name: "Reset Auxiliary Load", critical: true, evidence: A },
  { srv: "7.9", name: "Add Auxiliary Load To Boost Button", critical: false, evidence: A },
  { srv: "7.10", name: "Remove Auxiliary Load From Boost Button", critical: false, evidence: A },
  { srv: "7.11", name: "Read Boost Button Details", critical: false, evidence: A },
  { srv: "7.12", name: "Set Randomised Offset Limit", critical: true, evidence: A },
  { srv: "7.13", name: "Set Auxiliary Controller State", critical: true, evidence: A },
  { srv: "7.14", name: "Read Auxiliary Controller Configuration Data", critical: false, evidence: A },
  { srv: "7.15", name: "Read Auxiliary Controller Operational Data", critical: false, evidence: A },
  { srv: "7.16", name: "Limit APC Level", critical: true, evidence: "[GAP]" },
  { srv: "8.1.1", name: "Commission Device", critical: true, evidence: A },
  { srv: "8.2", name: "Read Inventory", critical: false, evidence: A },
  { srv: "8.3", name: "Decommission Device", critical: false, evidence: A },
  { srv: "8.4", name: "Update Inventory", critical: false, evidence: A },
  { srv: "8.5", name: "Service Opt Out", critical: false, evidence: A },
  { srv: "8.6", name: "Service Opt In", critical: false, evidence: A },
  { srv: "8.7.1", name: "Join Service (Critical)", critical: true, evidence: A },
  { srv: "8.7.2", name: "Join Service (Non-Critical)", critical: false, evidence: A },
  { srv: "8.8.1", name: "Unjoin Service (Critical)", critical: true, evidence: A },
  { srv: "8.8.2", name: "Unjoin Service (Non-Critical)", critical: false, evidence: A },
  { srv: "8.9", name: "Read Device Log", critical: false, evidence: A },
  { srv: "8.11", name: "Update HAN Device Log", critical: false, evidence: A },
  { srv: "8.12.1", name: "Restore HAN Device Log", critical: false, evidence: A },
  { srv: "8.12.2", name: "Restore Gas Proxy Function Device Log", critical: false, evidence: A },
  { srv: "8.13", name: "Return Local Command Response", critical: false, evidence: "[GAP]" },
  { srv: "8.14.1", name: "Communications Hub Status Update - Install Success", critical: false, evidence: A },
  {
    srv: "8.14.2",
    name: "Communications Hub Status Update - Install No SM WAN",
    critical: false,
    evidence: A,
  },
  { srv: "8.14.3", name: "Communications Hub Status Update - Fault Return", critical: false, evidence: A },
  { srv: "8.14.4", name: "Communications Hub Status Update - No Fault Return", critical: false, evidence: A },
  { srv: "9.1", name: "Request Customer Identification Number", critical: false, evidence: A },
  { srv: "11.1", name: "Update Firmware", critical: false, evidence: A },
  { srv: "11.2", name: "Read Firmware Version", critical: false, evidence: A },
  { srv: "11.3", name: "Activate Firmware", critical: true, evidence: A },
  { srv: "11.4", name: "Update PPMID Firmware", critical: false, evidence: A },
  { srv: "12.1", name: "Request WAN Matrix", critical: false, evidence: A },
  { srv: "12.2", name: "Device Pre-notification", critical: false, evidence: A },
  { srv: "14.1", name: "Record Network Data (GAS)", critical: false, evidence: A },
] satisfies SrvDefinition[]);

/** SRVs that give rise to a Critical Command (the defaults of seed 003 §3.2 apply to these). */
export const CRITICAL_COMMAND_SRVS: readonly string[] = Object.freeze(
  SRV_CATALOGUE.filter((d) => d.critical).map((d) => d.srv),
);

/** Every SRV an ADT file may name. */
export const KNOWN_SRVS: readonly string[] = Object.freeze(SRV_CATALOGUE.map((d) => d.srv));
