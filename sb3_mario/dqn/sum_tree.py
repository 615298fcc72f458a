"""
A sum tree: priorities whose prefix sums can be searched in O(log n), for prioritized replay.
"""

import numpy as np


class SumTree:
    """
    Binary tree over ``capacity`` non-negative priorities where every node holds the sum of its
    children, so that sampling proportionally to priority and updating priorities both cost
    O(log capacity). Stored as one flat array (node ``i`` has children ``2i`` and ``2i + 1``, the
    root is node 1, leaves start at ``self.n_leaves``). Every operation takes a batch of indices and
    works level by level with numpy: no Python loop over the batch.

    Parents are recomputed from their children (never adjusted by a difference), so rounding errors
    do not accumulate however many updates the tree sees.

    :param capacity: Number of priorities.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity!r} must be at least 1")
        self.capacity = capacity
        self.n_leaves = 1 << max(capacity - 1, 0).bit_length()  # next power of two
        self.depth = self.n_leaves.bit_length() - 1
        self.nodes = np.zeros(2 * self.n_leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.nodes[1])

    @property
    def priorities(self) -> np.ndarray:
        """All ``capacity`` priorities (a view: do not write to it, use :meth:`update`)."""
        return self.nodes[self.n_leaves : self.n_leaves + self.capacity]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """
        Set the priorities of some items. With repeated indices, the last value wins.

        :param indices: Items, in ``[0, capacity)``.
        :param priorities: Their new priorities (non-negative, finite).
        """
        indices = np.asarray(indices, dtype=np.int64).ravel()
        priorities = np.asarray(priorities, dtype=np.float64).ravel()
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"indices must be in [0, {self.capacity}), got {indices.min()}..{indices.max()}")
        if not np.all(np.isfinite(priorities)) or priorities.min() < 0:
            raise ValueError(f"priorities must be finite and non-negative, got min {priorities.min()}")
        nodes = indices + self.n_leaves
        self.nodes[nodes] = priorities
        for _ in range(self.depth):
            nodes = np.unique(nodes >> 1)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """
        For each value ``v``, the item ``i`` with ``sum(p[:i]) <= v < sum(p[:i + 1])``.

        :param prefix_sums: Values in ``[0, total)``.
        :return: Item indices (items of zero priority are never returned).
        """
        values = np.asarray(prefix_sums, dtype=np.float64).copy()
        nodes = np.ones(values.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sums = self.nodes[left]
            go_right = values >= left_sums
            # Rounding can leave a value just past a subtree whose right sibling is empty: stay left.
            go_right &= self.nodes[left + 1] > 0
            values = np.where(go_right, values - left_sums, values)
            nodes = left + go_right
        return nodes - self.n_leaves

    def sample(self, uniforms: np.ndarray) -> np.ndarray:
        """
        Draw items with probability proportional to their priority, stratified: the total is cut
        into ``len(uniforms)`` equal segments and one value is drawn in each, which lowers the
        variance of a batch against independent draws (as in Schaul et al., 2016).

        :param uniforms: One value in ``[0, 1)`` per item to draw (the caller's random generator
            decides, so SB3's seeding applies).
        :return: Item indices.
        """
        total = self.total
        if total <= 0:
            raise ValueError("cannot sample from a sum tree whose priorities are all zero")
        segment = total / len(uniforms)
        values = (np.arange(len(uniforms)) + uniforms) * segment
        return self.find(np.minimum(values, np.nextafter(total, 0)))
