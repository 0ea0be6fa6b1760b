/** Disjoint sets over image ids (path halving, union by size), for grouping duplicate pairs transitively. */
export class UnionFind {
  private readonly parent = new Map<number, number>();
  private readonly size = new Map<number, number>();

  find(item: number): number {
    if (!this.parent.has(item)) {
      this.parent.set(item, item);
      this.size.set(item, 1);
      return item;
    }
    let current = item;
    while (this.parent.get(current) !== current) {
      const grandparent = this.parent.get(this.parent.get(current)!)!;
      this.parent.set(current, grandparent);
      current = grandparent;
    }
    return current;
  }

  union(a: number, b: number): void {
    let rootA = this.find(a);
    let rootB = this.find(b);
    if (rootA === rootB) return;
    if (this.size.get(rootA)! < this.size.get(rootB)!) [rootA, rootB] = [rootB, rootA];
    this.parent.set(rootB, rootA);
    this.size.set(rootA, this.size.get(rootA)! + this.size.get(rootB)!);
  }

  /** Every set with more than one member, members ascending, sets ordered by their smallest member. */
  groups(): number[][] {
    const byRoot = new Map<number, number[]>();
    for (const item of this.parent.keys()) {
      const root = this.find(item);
      let members = byRoot.get(root);
      if (!members) byRoot.set(root, (members = []));
      members.push(item);
    }
    return [...byRoot.values()]
      .filter((members) => members.length > 1)
      .map((members) => members.sort((a, b) => a - b))
      .sort((a, b) => a[0]! - b[0]!);
  }
}
