/**
 * The topology builder: the one function that wires sources, processors, stores and sinks. Both
 * drivers run the `Topology` it builds. As in Kafka Streams, the graph splits into sub-topologies
 * (connected through processor edges and shared stores); a sink to an internal (repartition) topic
 * and a source reading it are the seam between two sub-topologies.
 */
import type { ProcessorSupplier } from "./api";
import { EcosError } from "./errors";
import type { Serde } from "./serde";

export type StoreBackendKind = "memory" | "lmdb";

export interface StoreSpec<V> {
  /** Part of the compatibility surface: names the changelog topic `<applicationId>-<name>-changelog`. */
  readonly name: string;
  readonly valueSerde: Serde<V>;
  readonly backend: StoreBackendKind;
  /** Backed by a compacted changelog topic (default true). */
  readonly logged: boolean;
}

export interface SourceNode {
  readonly kind: "source";
  readonly name: string;
  readonly topics: readonly string[];
  readonly valueSerde: Serde<unknown>;
  readonly children: string[];
}
export interface ProcessorNode {
  readonly kind: "processor";
  readonly name: string;
  readonly supplier: ProcessorSupplier<unknown, unknown>;
  readonly children: string[];
  readonly stores: string[];
}
export interface SinkNode {
  readonly kind: "sink";
  readonly name: string;
  readonly topic: string;
  readonly valueSerde: Serde<unknown>;
}
export type TopologyNode = SourceNode | ProcessorNode | SinkNode;

export interface Subtopology {
  readonly id: number;
  /** Logical topic names (internal ones unprefixed). */
  readonly sourceTopics: readonly string[];
  readonly nodes: readonly string[];
  readonly stores: readonly string[];
}

export interface Topology {
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  readonly stores: ReadonlyMap<string, StoreSpec<unknown>>;
  /** Logical names of internal topics; drivers name them `<applicationId>-<name>`. */
  readonly internalTopics: ReadonlySet<string>;
  readonly subtopologies: readonly Subtopology[];
  /** Logical source topic -> sub-topology id. */
  readonly subtopologyOfTopic: ReadonlyMap<string, number>;
  /** Logical names of topics written by sinks. */
  readonly sinkTopics: ReadonlySet<string>;
  describe(): string;
}

function invalid(message: string): EcosError {
  return new EcosError("ECOS_TOPOLOGY_INVALID", message);
}

export class TopologyBuilder {
  private readonly nodes = new Map<string, TopologyNode>();
  private readonly stores = new Map<string, StoreSpec<unknown>>();
  private readonly internalTopics = new Set<string>();

  private addNode(node: TopologyNode, parents: readonly string[]): this {
    if (this.nodes.has(node.name)) throw invalid(`node name "${node.name}" is used twice`);
    for (const p of parents) {
      const parent = this.nodes.get(p);
      if (!parent) throw invalid(`node "${node.name}": parent "${p}" is not defined (add parents first)`);
      if (parent.kind === "sink") throw invalid(`node "${node.name}": parent "${p}" is a sink`);
      parent.children.push(node.name);
    }
    if (node.kind !== "source" && parents.length === 0) throw invalid(`node "${node.name}" has no parent`);
    this.nodes.set(node.name, node);
    return this;
  }

  /** Reads one or more topics; keys are UTF-8 strings, values decoded with `valueSerde`. */
  addSource<V>(name: string, opts: { topics: readonly string[]; valueSerde: Serde<V> }): this {
    if (opts.topics.length === 0) throw invalid(`source "${name}" reads no topic`);
    return this.addNode(
      { kind: "source", name, topics: [...opts.topics], valueSerde: opts.valueSerde, children: [] },
      [],
    );
  }

  addProcessor<VIn, VOut>(name: string, supplier: ProcessorSupplier<VIn, VOut>, ...parents: string[]): this {
    return this.addNode(
      {
        kind: "processor",
        name,
        supplier: supplier as unknown as ProcessorSupplier<unknown, unknown>,
        children: [],
        stores: [],
      },
      parents,
    );
  }

  addSink<V>(name: string, opts: { topic: string; valueSerde: Serde<V> }, ...parents: string[]): this {
    return this.addNode({ kind: "sink", name, topic: opts.topic, valueSerde: opts.valueSerde }, parents);
  }

  /**
   * Declares an internal topic (e.g. for re-keying): written by a sink, read by a source, named
   * `<applicationId>-<name>` by the drivers and created by them with the task partition count.
   */
  addInternalTopic(name: string): this {
    this.internalTopics.add(name);
    return this;
  }

  addStateStore<V>(
    spec: { name: string; valueSerde: Serde<V>; backend?: StoreBackendKind; logged?: boolean },
    ...processors: string[]
  ): this {
    if (this.stores.has(spec.name)) throw invalid(`store "${spec.name}" is defined twice`);
    const full: StoreSpec<V> = {
      name: spec.name,
      valueSerde: spec.valueSerde,
      backend: spec.backend ?? "memory",
      logged: spec.logged ?? true,
    };
    this.stores.set(spec.name, full);
    for (const p of processors) {
      const node = this.nodes.get(p);
      if (!node || node.kind !== "processor")
        throw invalid(`store "${spec.name}": "${p}" is not a processor`);
      node.stores.push(spec.name);
    }
    return this;
  }

  build(): Topology {
    const nodes = new Map(this.nodes);
    const stores = new Map(this.stores);
    const internalTopics = new Set(this.internalTopics);
    // Union-find over processor edges and shared stores gives the sub-topologies.
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      let r = x;
      while (parent.get(r) !== r) r = parent.get(r) as string;
      parent.set(x, r);
      return r;
    };
    const union = (a: string, b: string): void => {
      const ra = find(a);
      const rb = find(b);
      if (ra !== rb) parent.set(rb, ra);
    };
    for (const name of nodes.keys()) parent.set(name, name);
    const storeOwner = new Map<string, string>();
    for (const node of nodes.values()) {
      if (node.kind !== "sink") for (const c of node.children) union(node.name, c);
      if (node.kind === "processor") {
        for (const s of node.stores) {
          const owner = storeOwner.get(s);
          if (owner) union(owner, node.name);
          else storeOwner.set(s, node.name);
        }
      }
    }
    const sinkTopics = new Set<string>();
    const subtopologyOfTopic = new Map<string, number>();
    const groups = new Map<string, { nodes: string[]; topics: string[]; stores: Set<string> }>();
    for (const node of nodes.values()) {
      const root = find(node.name);
      let g = groups.get(root);
      if (!g) {
        g = { nodes: [], topics: [], stores: new Set() };
        groups.set(root, g);
      }
      g.nodes.push(node.name);
      if (node.kind === "source") g.topics.push(...node.topics);
      if (node.kind === "processor") node.stores.forEach((s) => g.stores.add(s));
      if (node.kind === "sink") sinkTopics.add(node.topic);
    }
    const subtopologies: Subtopology[] = [];
    for (const g of groups.values()) {
      if (g.topics.length === 0)
        throw invalid(`nodes ${g.nodes.join(", ")} are not reachable from any source`);
      const id = subtopologies.length;
      for (const t of g.topics) {
        if (subtopologyOfTopic.has(t)) throw invalid(`topic "${t}" is read by two sub-topologies`);
        subtopologyOfTopic.set(t, id);
      }
      subtopologies.push({ id, sourceTopics: g.topics, nodes: g.nodes, stores: [...g.stores] });
    }
    for (const t of internalTopics) {
      if (!sinkTopics.has(t) || !subtopologyOfTopic.has(t)) {
        throw invalid(`internal topic "${t}" must be both written by a sink and read by a source`);
      }
    }
    for (const s of stores.keys()) {
      if (!storeOwner.has(s)) throw invalid(`store "${s}" is connected to no processor`);
    }
    const describe = (): string =>
      subtopologies
        .map(
          (st) =>
            `Sub-topology ${st.id}: sources [${st.sourceTopics.join(", ")}] stores [${st.stores.join(", ")}]\n` +
            st.nodes
              .map((n) => {
                const node = nodes.get(n) as TopologyNode;
                const out =
                  node.kind === "sink" ? `-> topic ${node.topic}` : `-> ${node.children.join(", ")}`;
                return `  ${node.kind} ${n} ${out}`;
              })
              .join("\n"),
        )
        .join("\n");
    return { nodes, stores, internalTopics, subtopologies, subtopologyOfTopic, sinkTopics, describe };
  }
}
