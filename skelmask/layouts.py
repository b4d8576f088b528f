"""Skeleton layouts: joint names, the kinematic tree, body parts and named joint subsets.

A ``SkeletonLayout`` is plain data. Everything structural that a masker, a model or a data
reader needs about a skeleton (how many joints, which joint hangs from which, which joints form
the left arm) is read from a layout, so that nothing in skelmask is hard-coded to NTU RGB+D.

Built-in layouts, looked up with ``get_layout``:

=================  ======  ===================================================================
name               joints  source
=================  ======  ===================================================================
``"nturgb+d"``     25      NTU RGB+D 60/120 and PKU-MMD (Kinect v2); pyskl key
``"coco"``         17      COCO keypoints (2D pose estimators); pyskl key
``"openpose"``     18      OpenPose-18 / Kinetics-Skeleton; pyskl key
``"msr-action3d"`` 20      MSR Action3D (Kinect v1, the dataset's own joint order)
``"nw-ucla"``      20      Northwestern-UCLA Multiview (Kinect v1 SDK order)
=================  ======  ===================================================================

Thumb convention for ``"nturgb+d"``: both the hand tip and the thumb hang from the *hand* joint
(HandTipLeft→HandLeft, ThumbLeft→HandLeft, and the same on the right), as in the ST-GCN,
pyskl and mmaction2 graphs. The Kinect SDK attaches the thumb to the wrist and CTR-GCN chains
HandTip→Thumb→Hand; build such a variant with ``SkeletonLayout.from_parents`` if you need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import torch

from skelmask._checks import as_integer, as_integers, check_flags

__all__ = [
    "SkeletonLayout",
    "get_layout",
    "list_layouts",
    "register_layout",
]


class SkeletonLayout:
    """A skeleton's joints, kinematic tree, body parts and named joint subsets.

    The tree is given as a parent array: ``parents[j]`` is the index of joint ``j``'s parent and
    exactly one joint, the root, has parent ``-1``. Depths, edges and adjacency derive from it.

    Args:
        name: Identifier of the layout, e.g. ``"nturgb+d"``.
        joint_names: One name per joint, in the order the data stores joints.
        parents: Parent index of every joint, ``-1`` for the root.
        body_parts: Named groups of joint indices (e.g. ``"left_arm"``). Body-part maskers and
            SkeleMix draw from these. Built-in layouts partition all joints into five parts.
        subsets: Further named joint subsets, e.g. HA-CM's ``"hacm_root"`` torso joints.
        center: The joint that graph-convolution partitions and pyskl treat as the centre.
            Defaults to the root.

    Raises:
        TypeError: If a parent, ``center`` or a joint of a body part or subset is not an integer
            (``int()`` would truncate ``0.5`` to a valid index).
        ValueError: If the parent array is not a single tree (no root, two roots, a parent out of
            range, a joint that is its own ancestor), if the number of names does not match, or
            if a body part or subset names an index out of range.

    Examples:
        >>> layout = SkeletonLayout.from_parents([-1, 0, 1, 1], name="toy")
        >>> layout.depth
        (0, 1, 2, 2)
        >>> layout.edges
        ((1, 0), (2, 1), (3, 1))
    """

    __slots__ = ("_body_parts", "_center", "_joint_names", "_name", "_parents", "_subsets")

    def __init__(
        self,
        name: str,
        joint_names: Sequence[str],
        parents: Sequence[int],
        body_parts: Mapping[str, Sequence[int]] | None = None,
        subsets: Mapping[str, Sequence[int]] | None = None,
        center: int | None = None,
    ) -> None:
        parents_tuple = as_integers(parents, "parents")
        names_tuple = tuple(str(n) for n in joint_names)
        _validate_tree(parents_tuple)
        num_joints = len(parents_tuple)
        if len(names_tuple) != num_joints:
            raise ValueError(
                f"joint_names has {len(names_tuple)} entries but parents has {num_joints}; "
                "expected one name per joint"
            )
        if len(set(names_tuple)) != num_joints:
            duplicates = sorted({n for n in names_tuple if names_tuple.count(n) > 1})
            raise ValueError(f"joint_names must be unique; repeated: {duplicates}")
        root = parents_tuple.index(-1)
        center_index = root if center is None else as_integer(center)
        if center_index is None:
            raise TypeError(f"center must be a joint index (an integer), got {center!r}")
        if not 0 <= center_index < num_joints:
            raise ValueError(f"center must be a joint index in [0, {num_joints}), got {center}")
        self._name = name
        self._joint_names = names_tuple
        self._parents = parents_tuple
        self._center = center_index
        self._body_parts = _validated_groups("body_parts", body_parts or {}, num_joints)
        self._subsets = _validated_groups("subsets", subsets or {}, num_joints)

    @classmethod
    def from_parents(
        cls,
        parents: Sequence[int],
        *,
        name: str = "custom",
        joint_names: Sequence[str] | None = None,
        body_parts: Mapping[str, Sequence[int]] | None = None,
        subsets: Mapping[str, Sequence[int]] | None = None,
        center: int | None = None,
    ) -> SkeletonLayout:
        """Builds a layout from a parent list; joints are named ``joint_0 …`` unless named.

        Args:
            parents: Parent index of every joint, ``-1`` for the single root.
            name: Identifier of the layout.
            joint_names: Optional joint names, one per joint.
            body_parts: Optional named groups of joint indices.
            subsets: Optional further named joint subsets.
            center: Optional graph centre; defaults to the root.

        Returns:
            The validated layout.
        """
        if joint_names is None:
            joint_names = [f"joint_{j}" for j in range(len(parents))]
        return cls(
            name=name,
            joint_names=joint_names,
            parents=parents,
            body_parts=body_parts,
            subsets=subsets,
            center=center,
        )

    @classmethod
    def from_edges(
        cls,
        num_joints: int,
        edges: Iterable[tuple[int, int]],
        root: int,
        *,
        name: str = "custom",
        joint_names: Sequence[str] | None = None,
        body_parts: Mapping[str, Sequence[int]] | None = None,
        subsets: Mapping[str, Sequence[int]] | None = None,
    ) -> SkeletonLayout:
        """Builds a layout from an undirected bone list (such as pyskl's ``inward``) and a root.

        Args:
            num_joints: Number of joints ``V``.
            edges: Bones as joint-index pairs, in either direction. They must form a tree that
                spans all joints.
            root: Joint that becomes the root of the kinematic tree.
            name: Identifier of the layout.
            joint_names: Optional joint names, one per joint.
            body_parts: Optional named groups of joint indices.
            subsets: Optional further named joint subsets.

        Returns:
            The validated layout, with ``center`` set to ``root``.

        Raises:
            TypeError: If ``num_joints``, ``root`` or a joint of an edge is not an integer.
            ValueError: If an edge names a joint out of range, or the edges do not form a tree
                spanning all ``num_joints`` joints.
        """
        for value, argument in ((num_joints, "num_joints"), (root, "root")):
            if as_integer(value) is None:
                raise TypeError(f"{argument} must be an integer, got {value!r}")
        num_joints, root = int(num_joints), int(root)
        edge_list = []
        for index, edge in enumerate(edges):
            pair = as_integers(edge, f"edges[{index}]")
            if len(pair) != 2:
                raise ValueError(f"edges[{index}] must be a pair of joints, got {edge!r}")
            edge_list.append((pair[0], pair[1]))
        for a, b in edge_list:
            if not (0 <= a < num_joints and 0 <= b < num_joints):
                raise ValueError(
                    f"edge ({a}, {b}) names a joint outside [0, {num_joints}) in edges"
                )
        if len(edge_list) != num_joints - 1:
            raise ValueError(
                f"a tree over {num_joints} joints has {num_joints - 1} edges, got {len(edge_list)}"
            )
        parents = _parents_from_undirected(num_joints, edge_list, root)
        return cls.from_parents(
            parents,
            name=name,
            joint_names=joint_names,
            body_parts=body_parts,
            subsets=subsets,
            center=root,
        )

    @property
    def name(self) -> str:
        """Identifier of the layout."""
        return self._name

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint names, in storage order."""
        return self._joint_names

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent index of every joint; ``-1`` marks the root."""
        return self._parents

    @property
    def num_joints(self) -> int:
        """Number of joints ``V``."""
        return len(self._parents)

    @property
    def root(self) -> int:
        """Index of the root joint of the kinematic tree."""
        return self._parents.index(-1)

    @property
    def center(self) -> int:
        """Graph centre used by GCN partitions (pyskl's ``center``)."""
        return self._center

    @property
    def body_parts(self) -> Mapping[str, tuple[int, ...]]:
        """Named body parts, as read-only mapping from name to joint indices."""
        return self._body_parts

    @property
    def subsets(self) -> Mapping[str, tuple[int, ...]]:
        """Further named joint subsets, as read-only mapping from name to joint indices."""
        return self._subsets

    @property
    def depth(self) -> tuple[int, ...]:
        """Hop count from the root to every joint (the root has depth 0)."""
        depths = [-1] * self.num_joints
        for joint in self._topological_order():
            parent = self._parents[joint]
            depths[joint] = 0 if parent < 0 else depths[parent] + 1
        return tuple(depths)

    @property
    def max_depth(self) -> int:
        """Largest depth of any joint."""
        return max(self.depth)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """Bones as ``(child, parent)`` pairs, ordered by child index (pyskl's ``inward``)."""
        return tuple((j, p) for j, p in enumerate(self._parents) if p >= 0)

    @property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """For every joint, the indices of its children in ascending order."""
        kids: list[list[int]] = [[] for _ in range(self.num_joints)]
        for child, parent in self.edges:
            kids[parent].append(child)
        return tuple(tuple(k) for k in kids)

    def adjacency(self, *, self_loops: bool = False) -> torch.Tensor:
        """Symmetric 0/1 adjacency matrix of the bones.

        Args:
            self_loops: Whether to put ones on the diagonal.

        Returns:
            Float32 tensor of shape ``(V, V)``.
        """
        adjacency = torch.zeros(self.num_joints, self.num_joints)
        for child, parent in self.edges:
            adjacency[child, parent] = 1.0
            adjacency[parent, child] = 1.0
        if self_loops:
            adjacency.fill_diagonal_(1.0)
        return adjacency

    def joint_index(self, joint_name: str) -> int:
        """Index of a joint by name.

        Raises:
            KeyError: If the layout has no joint of that name.
        """
        try:
            return self._joint_names.index(joint_name)
        except ValueError:
            raise KeyError(
                f"layout {self._name!r} has no joint {joint_name!r}; "
                f"joints are {list(self._joint_names)}"
            ) from None

    def subset(self, subset_name: str) -> tuple[int, ...]:
        """Joint indices of a named subset or body part.

        Raises:
            KeyError: If neither a subset nor a body part has that name.
        """
        if subset_name in self._subsets:
            return self._subsets[subset_name]
        if subset_name in self._body_parts:
            return self._body_parts[subset_name]
        known = sorted([*self._subsets, *self._body_parts])
        raise KeyError(f"layout {self._name!r} has no subset {subset_name!r}; known: {known}")

    def complement(self, joints: Iterable[int]) -> tuple[int, ...]:
        """Joint indices not in ``joints``, in ascending order."""
        excluded = set(joints)
        return tuple(j for j in range(self.num_joints) if j not in excluded)

    def select(
        self,
        joints: Sequence[int] | str,
        *,
        name: str | None = None,
        root: int | None = None,
    ) -> SkeletonLayout:
        """A layout over a subset of the joints, e.g. the joints a model keeps as tokens.

        Joint ``i`` of the new layout is ``joints[i]`` of this one. Each kept joint's parent is
        its nearest kept ancestor, so the tree is re-linked through the dropped joints. When
        dropping joints disconnects the tree (HA-CM drops the whole torso), every orphaned
        branch hangs from the new root: by default the kept joint closest to the old root (the
        first listed among equals), or ``root``. Body parts and subsets keep their kept joints
        (re-indexed; emptied ones are dropped); the centre is kept if selected, else it becomes
        the new root.

        Args:
            joints: Indices of the joints to keep, in their new order, or the name of a subset
                or body part (e.g. ``"hacm_tokens"``).
            name: Name of the new layout; default ``"<name>/<subset>"`` or
                ``"<name>/<number> joints"``.
            root: Index (in this layout) of a kept joint to be the new root.

        Returns:
            The new layout.

        Raises:
            TypeError: If ``joints`` holds a non-integer.
            ValueError: If ``joints`` is empty, repeats a joint or holds an index outside the
                layout, or ``root`` is not among them.
            KeyError: If ``joints`` names no subset or body part.

        Examples:
            >>> ntu = get_layout("nturgb+d")
            >>> tokens = ntu.select("hacm_tokens")  # HA-CM's 18 token joints
            >>> tokens.num_joints, tokens.joint_names[:2], tokens.subsets["hacm_tokens"][:3]
            (18, ('neck', 'head'), (0, 1, 2))
        """
        if isinstance(joints, str):
            default_name = f"{self._name}/{joints}"
            kept = self.subset(joints)
        else:
            kept = as_integers(joints, "joints")
            default_name = f"{self._name}/{len(kept)} joints"
        if not kept:
            raise ValueError("joints must name at least one joint, got an empty selection")
        bad = [j for j in kept if not 0 <= j < self.num_joints]
        if bad:
            raise ValueError(
                f"joints {bad} are outside [0, {self.num_joints}) for layout {self._name!r}"
            )
        if len(set(kept)) != len(kept):
            raise ValueError(f"joints repeats a joint: {list(kept)}")
        position = {joint: index for index, joint in enumerate(kept)}
        if root is not None and root not in position:
            raise ValueError(f"root={root} is not among the selected joints {list(kept)}")
        depth = self.depth
        if root is None:
            root = min(kept, key=lambda joint: (depth[joint], position[joint]))
        parents = []
        for joint in kept:
            ancestor = self._parents[joint]
            while ancestor != -1 and ancestor not in position:
                ancestor = self._parents[ancestor]
            parents.append(-1 if ancestor == -1 else position[ancestor])
        new_root = position[root]
        if parents[new_root] != -1:
            # The chosen root has a kept ancestor: re-root the re-linked forest's tree there.
            orphans = [index for index, parent in enumerate(parents) if parent == -1]
            parents = _parents_from_undirected(
                len(kept),
                [(i, p) for i, p in enumerate(parents) if p != -1]
                + [(orphan, new_root) for orphan in orphans],
                new_root,
            )
        else:
            parents = [
                new_root if parent == -1 and index != new_root else parent
                for index, parent in enumerate(parents)
            ]

        def remap(groups: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
            mapped = {
                group: tuple(position[j] for j in members if j in position)
                for group, members in groups.items()
            }
            return {group: members for group, members in mapped.items() if members}

        return SkeletonLayout(
            name=name or default_name,
            joint_names=[self._joint_names[j] for j in kept],
            parents=parents,
            body_parts=remap(self._body_parts),
            subsets=remap(self._subsets),
            center=position.get(self._center, new_root),
        )

    def reroot(self, new_root: int) -> SkeletonLayout:
        """The same skeleton with the kinematic tree re-rooted at ``new_root``.

        Edges, names, body parts and subsets are unchanged; only parent directions flip along the
        path between the old and the new root. ``center`` is kept.

        Raises:
            ValueError: If ``new_root`` is not a joint index.
        """
        if not 0 <= new_root < self.num_joints:
            raise ValueError(
                f"new_root must be a joint index in [0, {self.num_joints}), got {new_root}"
            )
        parents = _parents_from_undirected(self.num_joints, list(self.edges), new_root)
        return SkeletonLayout(
            name=self._name,
            joint_names=self._joint_names,
            parents=parents,
            body_parts=self._body_parts,
            subsets=self._subsets,
            center=self._center,
        )

    def _topological_order(self) -> list[int]:
        order = [self.root]
        children = self.children
        for joint in order:
            order.extend(children[joint])
        return order

    def _key(self) -> tuple[object, ...]:
        return (
            self._name,
            self._joint_names,
            self._parents,
            self._center,
            tuple(self._body_parts.items()),
            tuple(self._subsets.items()),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SkeletonLayout):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"SkeletonLayout(name={self._name!r}, num_joints={self.num_joints}, root={self.root}, "
            f"body_parts={list(self._body_parts)})"
        )


def _validate_tree(parents: tuple[int, ...]) -> None:
    num_joints = len(parents)
    if num_joints == 0:
        raise ValueError("parents must name at least one joint, got an empty sequence")
    roots = [j for j, p in enumerate(parents) if p == -1]
    if not roots:
        raise ValueError("parents has no root: exactly one joint must have parent -1")
    if len(roots) > 1:
        raise ValueError(
            f"parents has {len(roots)} roots (joints {roots} have parent -1); expected exactly one"
        )
    for joint, parent in enumerate(parents):
        if parent != -1 and not 0 <= parent < num_joints:
            raise ValueError(
                f"parents[{joint}] = {parent} is out of range; expected -1 or an index in "
                f"[0, {num_joints})"
            )
    for start in range(num_joints):
        seen = {start}
        joint = parents[start]
        while joint != -1:
            if joint in seen:
                raise ValueError(
                    f"parents contains a cycle through joint {joint} (reached from joint {start})"
                )
            seen.add(joint)
            joint = parents[joint]


def _validated_groups(
    argument: str, groups: Mapping[str, Sequence[int]], num_joints: int
) -> Mapping[str, tuple[int, ...]]:
    checked: dict[str, tuple[int, ...]] = {}
    for group_name, joints in groups.items():
        indices = as_integers(joints, f"{argument}[{group_name!r}]")
        if not indices:
            raise ValueError(f"{argument}[{group_name!r}] is empty; expected at least one joint")
        bad = [j for j in indices if not 0 <= j < num_joints]
        if bad:
            raise ValueError(
                f"{argument}[{group_name!r}] has joint indices {bad} outside [0, {num_joints})"
            )
        if len(set(indices)) != len(indices):
            raise ValueError(f"{argument}[{group_name!r}] repeats a joint: {list(indices)}")
        checked[str(group_name)] = indices
    return MappingProxyType(checked)


def _parents_from_undirected(
    num_joints: int, edges: Sequence[tuple[int, int]], root: int
) -> list[int]:
    if not 0 <= root < num_joints:
        raise ValueError(f"root must be a joint index in [0, {num_joints}), got {root}")
    neighbours: list[list[int]] = [[] for _ in range(num_joints)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    parents = [-2] * num_joints
    parents[root] = -1
    frontier = [root]
    for joint in frontier:
        for other in neighbours[joint]:
            if parents[other] == -2:
                parents[other] = joint
                frontier.append(other)
    unreached = [j for j, p in enumerate(parents) if p == -2]
    if unreached:
        raise ValueError(
            f"edges do not connect joints {unreached} to the root {root}; expected a spanning tree"
        )
    return parents


_REGISTRY: dict[str, SkeletonLayout] = {}


def register_layout(layout: SkeletonLayout, *, overwrite: bool = False) -> SkeletonLayout:
    """Makes a layout available to ``get_layout`` under its name.

    Args:
        layout: The layout to register.
        overwrite: Replace an existing layout of the same name instead of raising.

    Returns:
        The registered layout.

    Raises:
        TypeError: If ``overwrite`` is not a bool.
        ValueError: If a layout of that name exists and ``overwrite`` is false.
    """
    check_flags(overwrite=overwrite)
    if layout.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a layout named {layout.name!r} is already registered; pass overwrite=True to replace"
        )
    _REGISTRY[layout.name] = layout
    return layout


def get_layout(name: str | SkeletonLayout) -> SkeletonLayout:
    """Looks up a registered layout by name; a layout passed in is returned unchanged.

    Args:
        name: A registered name such as ``"nturgb+d"``, or a ``SkeletonLayout``.

    Returns:
        The layout.

    Raises:
        KeyError: If no layout of that name is registered.

    Examples:
        >>> get_layout("nturgb+d").num_joints
        25
    """
    if isinstance(name, SkeletonLayout):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown layout {name!r}; available: {list_layouts()}") from None


def list_layouts() -> list[str]:
    """Names of all registered layouts, sorted."""
    return sorted(_REGISTRY)


def _ntu_rgbd() -> SkeletonLayout:
    names = [
        "spine_base", "spine_mid", "neck", "head",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot",
        "right_hip", "right_knee", "right_ankle", "right_foot",
        "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
    ]  # fmt: skip
    parents = [-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11]  # fmt: skip
    hacm_root = (0, 1, 4, 8, 12, 16, 20)
    return SkeletonLayout(
        name="nturgb+d",
        joint_names=names,
        parents=parents,
        # SkeleMixCLR's five-part partition; named by NTU's own left/right (its code mirrors them).
        body_parts={
            "trunk": (0, 1, 2, 3, 20),
            "left_arm": (4, 5, 6, 7, 21, 22),
            "right_arm": (8, 9, 10, 11, 23, 24),
            "left_leg": (12, 13, 14, 15),
            "right_leg": (16, 17, 18, 19),
        },
        subsets={
            # HA-CM's torso "father" joints and the 18 token joints it masks and reconstructs.
            "hacm_root": hacm_root,
            "hacm_tokens": tuple(j for j in range(25) if j not in hacm_root),
        },
        center=20,
    )


def _coco() -> SkeletonLayout:
    names = [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ]  # fmt: skip
    return SkeletonLayout(
        name="coco",
        joint_names=names,
        parents=[-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14],
        body_parts={
            "trunk": (0, 1, 2, 3, 4, 5, 6, 11, 12),
            "left_arm": (7, 9),
            "right_arm": (8, 10),
            "left_leg": (13, 15),
            "right_leg": (14, 16),
        },
        subsets={"head": (0, 1, 2, 3, 4), "torso": (5, 6, 11, 12)},
    )


def _openpose() -> SkeletonLayout:
    names = [
        "nose", "neck",
        "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist",
        "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle",
        "right_eye", "left_eye", "right_ear", "left_ear",
    ]  # fmt: skip
    return SkeletonLayout(
        name="openpose",
        joint_names=names,
        parents=[1, -1, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15],
        body_parts={
            "trunk": (0, 1, 2, 5, 8, 11, 14, 15, 16, 17),
            "left_arm": (6, 7),
            "right_arm": (3, 4),
            "left_leg": (12, 13),
            "right_leg": (9, 10),
        },
        subsets={"head": (0, 14, 15, 16, 17)},
    )


def _msr_action3d() -> SkeletonLayout:
    names = [
        "left_shoulder", "right_shoulder", "neck", "spine", "left_hip", "right_hip",
        "hip_center", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hand", "right_hand", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_foot", "right_foot", "head",
    ]  # fmt: skip
    return SkeletonLayout(
        name="msr-action3d",
        joint_names=names,
        parents=[2, 2, 3, 6, 6, 6, -1, 0, 1, 7, 8, 9, 10, 4, 5, 13, 14, 15, 16, 2],
        body_parts={
            "trunk": (2, 3, 6, 19),
            "left_arm": (0, 7, 9, 11),
            "right_arm": (1, 8, 10, 12),
            "left_leg": (4, 13, 15, 17),
            "right_leg": (5, 14, 16, 18),
        },
        center=2,
    )


def _nw_ucla() -> SkeletonLayout:
    names = [
        "hip_center", "spine", "shoulder_center", "head",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot",
        "right_hip", "right_knee", "right_ankle", "right_foot",
    ]  # fmt: skip
    return SkeletonLayout(
        name="nw-ucla",
        joint_names=names,
        parents=[-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18],
        body_parts={
            "trunk": (0, 1, 2, 3),
            "left_arm": (4, 5, 6, 7),
            "right_arm": (8, 9, 10, 11),
            "left_leg": (12, 13, 14, 15),
            "right_leg": (16, 17, 18, 19),
        },
        center=2,
    )


for _factory in (_ntu_rgbd, _coco, _openpose, _msr_action3d, _nw_ucla):
    register_layout(_factory())
