from __future__ import annotations

import numpy as np
import pytest
import torch

from skelmask.layouts import SkeletonLayout, get_layout, list_layouts, register_layout

BUILT_IN = ["coco", "msr-action3d", "nturgb+d", "nw-ucla", "openpose"]

# ecosystem.md 5.3: NTU RGB+D depths rooted at SpineBase, and the pyskl tree rooted at 20.
NTU_DEPTH_SPINE_BASE = [0, 1, 3, 4, 3, 4, 5, 6, 3, 4, 5, 6, 1, 2, 3, 4, 1, 2, 3, 4, 2, 7, 7, 7, 7]
NTU_PARENT_PYSKL = [1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, -1, 7, 7, 11, 11]  # fmt: skip
NTU_DEPTH_PYSKL = [2, 1, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 3, 4, 5, 6, 3, 4, 5, 6, 0, 5, 5, 5, 5]
# ecosystem.md 5.4: COCO-17 rooted at the nose.
COCO_DEPTH = [0, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3, 4, 4]


def test_registry_lists_every_built_in_layout() -> None:
    assert set(BUILT_IN) <= set(list_layouts())


@pytest.mark.parametrize(
    ("name", "num_joints"),
    [("nturgb+d", 25), ("coco", 17), ("openpose", 18), ("msr-action3d", 20), ("nw-ucla", 20)],
)
def test_built_in_joint_counts(name: str, num_joints: int) -> None:
    layout = get_layout(name)
    assert layout.num_joints == num_joints
    assert len(layout.joint_names) == num_joints


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_is_a_tree_with_one_root(name: str) -> None:
    layout = get_layout(name)
    assert layout.parents.count(-1) == 1
    assert len(layout.edges) == layout.num_joints - 1
    # Walking up from every joint reaches the root without revisiting a joint.
    for start in range(layout.num_joints):
        seen = set()
        joint = start
        while joint != -1:
            assert joint not in seen
            seen.add(joint)
            joint = layout.parents[joint]
        assert layout.root in seen
    adjacency = layout.adjacency()
    assert torch.equal(adjacency, adjacency.T)
    assert int(adjacency.sum()) == 2 * (layout.num_joints - 1)


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_body_parts_partition_all_joints(name: str) -> None:
    layout = get_layout(name)
    joints = [j for part in layout.body_parts.values() for j in part]
    assert sorted(joints) == list(range(layout.num_joints))
    assert set(layout.body_parts) == {"trunk", "left_arm", "right_arm", "left_leg", "right_leg"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_left_and_right_parts_are_named_consistently(name: str) -> None:
    layout = get_layout(name)
    for part, joints in layout.body_parts.items():
        side = part.split("_")[0]
        if side in {"left", "right"}:
            names = [layout.joint_names[j] for j in joints]
            assert all(n.startswith(side) for n in names), (part, names)


def test_ntu_depths_match_the_reference_table() -> None:
    layout = get_layout("nturgb+d")
    assert layout.root == 0
    assert list(layout.depth) == NTU_DEPTH_SPINE_BASE
    assert layout.max_depth == 7


def test_ntu_rerooted_at_spine_shoulder_matches_pyskl() -> None:
    rerooted = get_layout("nturgb+d").reroot(20)
    assert list(rerooted.parents) == NTU_PARENT_PYSKL
    assert list(rerooted.depth) == NTU_DEPTH_PYSKL
    assert set(rerooted.edges) != set(get_layout("nturgb+d").edges)  # directions flipped
    undirected = {frozenset(e) for e in rerooted.edges}
    assert undirected == {frozenset(e) for e in get_layout("nturgb+d").edges}


def test_ntu_thumb_convention_attaches_thumbs_and_tips_to_the_hand() -> None:
    layout = get_layout("nturgb+d")
    hand_left, hand_right = layout.joint_index("left_hand"), layout.joint_index("right_hand")
    assert layout.parents[layout.joint_index("left_thumb")] == hand_left
    assert layout.parents[layout.joint_index("left_hand_tip")] == hand_left
    assert layout.parents[layout.joint_index("right_thumb")] == hand_right
    assert layout.parents[layout.joint_index("right_hand_tip")] == hand_right


def test_ntu_hacm_subsets() -> None:
    layout = get_layout("nturgb+d")
    root = layout.subset("hacm_root")
    assert root == (0, 1, 4, 8, 12, 16, 20)
    tokens = layout.subset("hacm_tokens")
    assert len(tokens) == 18
    assert sorted(root + tokens) == list(range(25))
    assert layout.complement(root) == tokens


def test_coco_depths_match_the_reference_table() -> None:
    assert list(get_layout("coco").depth) == COCO_DEPTH


def test_openpose_parents_match_the_reference() -> None:
    layout = get_layout("openpose")
    assert list(layout.parents) == [1, -1, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15]
    assert layout.root == 1


def test_nw_ucla_matches_the_ctr_gcn_bone_list() -> None:
    # CTR-GCN's NW-UCLA graph, 1-based (child, parent) pairs towards ShoulderCenter (joint 3).
    inward_1_based = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9),
                      (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
                      (18, 17), (19, 18), (20, 19)]  # fmt: skip
    expected = {frozenset((a - 1, b - 1)) for a, b in inward_1_based}
    assert {frozenset(e) for e in get_layout("nw-ucla").edges} == expected


def test_msr_action3d_tree_is_anatomical() -> None:
    layout = get_layout("msr-action3d")
    name = layout.joint_names
    assert name[layout.root] == "hip_center"
    for child, parent in [("left_hand", "left_wrist"), ("right_foot", "right_ankle"),
                          ("head", "neck"), ("left_shoulder", "neck")]:  # fmt: skip
        assert layout.parents[layout.joint_index(child)] == layout.joint_index(parent)


def test_from_edges_rebuilds_the_same_tree() -> None:
    ntu = get_layout("nturgb+d")
    rebuilt = SkeletonLayout.from_edges(25, ntu.edges, root=0, joint_names=ntu.joint_names)
    assert rebuilt.parents == ntu.parents


def test_from_parents_derives_children_and_adjacency() -> None:
    layout = SkeletonLayout.from_parents([-1, 0, 1, 1])
    assert layout.children == ((1,), (2, 3), (), ())
    expected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0], [0, 1, 0, 1]], dtype=torch.float32
    )
    assert torch.equal(layout.adjacency(self_loops=True), expected)
    assert layout.joint_names == ("joint_0", "joint_1", "joint_2", "joint_3")


@pytest.mark.parametrize(
    ("parents", "message"),
    [
        ([0, 1, 2], "no root"),
        ([-1, -1, 0], "2 roots"),
        ([-1, 5, 0], r"parents\[1\] = 5 is out of range"),
        ([-1, 2, 1], "cycle"),
        ([], "at least one joint"),
    ],
)
def test_invalid_parent_lists_are_clear_errors(parents: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SkeletonLayout.from_parents(parents)


def test_invalid_groups_and_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"body_parts\['arm'\] has joint indices \[7\]"):
        SkeletonLayout.from_parents([-1, 0], body_parts={"arm": [1, 7]})
    with pytest.raises(ValueError, match="is empty"):
        SkeletonLayout.from_parents([-1, 0], subsets={"none": []})
    with pytest.raises(ValueError, match="one name per joint"):
        SkeletonLayout.from_parents([-1, 0], joint_names=["a"])
    with pytest.raises(ValueError, match="must be unique"):
        SkeletonLayout.from_parents([-1, 0], joint_names=["a", "a"])
    with pytest.raises(ValueError, match="spanning tree"):
        SkeletonLayout.from_edges(4, [(0, 1), (1, 0), (2, 3)], root=0)


def test_lookups_of_unknown_names_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="unknown layout 'ntu'"):
        get_layout("ntu")
    layout = get_layout("coco")
    with pytest.raises(KeyError, match="no joint 'tail'"):
        layout.joint_index("tail")
    with pytest.raises(KeyError, match="no subset 'wings'"):
        layout.subset("wings")
    with pytest.raises(ValueError, match="new_root"):
        layout.reroot(17)


def test_register_layout_refuses_silent_overwrite() -> None:
    layout = SkeletonLayout.from_parents([-1, 0, 0], name="test-tripod")
    register_layout(layout)
    assert get_layout("test-tripod") is layout
    with pytest.raises(ValueError, match="already registered"):
        register_layout(layout)
    assert get_layout(layout) is layout


def test_layouts_compare_and_hash_by_content() -> None:
    a = SkeletonLayout.from_parents([-1, 0, 0], body_parts={"x": [1]})
    b = SkeletonLayout.from_parents([-1, 0, 0], body_parts={"x": [1]})
    assert a == b
    assert hash(a) == hash(b)
    assert a != a.reroot(1)


def test_joint_indices_must_be_integers_not_truncated_floats() -> None:
    # int() used to turn a parent of 0.5 into 0 and True into 1, silently.
    for bad, shown in ((0.5, "0.5"), (0.0, "0.0"), (True, "True")):
        with pytest.raises(TypeError, match=rf"parents\[1\] must be an integer, got {shown}"):
            SkeletonLayout.from_parents([-1, bad, 1])
    with pytest.raises(TypeError, match=r"edges\[0\]\[1\] must be an integer, got 1\.5"):
        SkeletonLayout.from_edges(3, [(0, 1.5), (1, 2)], root=0)
    with pytest.raises(ValueError, match=r"edges\[1\] must be a pair of joints, got \(1, 2, 3\)"):
        SkeletonLayout.from_edges(3, [(0, 1), (1, 2, 3)], root=0)
    with pytest.raises(TypeError, match=r"root must be an integer, got 1\.0"):
        SkeletonLayout.from_edges(3, [(0, 1), (1, 2)], root=1.0)
    with pytest.raises(TypeError, match=r"center must be a joint index \(an integer\), got 0\.5"):
        SkeletonLayout.from_parents([-1, 0, 1], center=0.5)
    with pytest.raises(TypeError, match=r"body_parts\['arm'\]\[0\] must be an integer, got 1\.5"):
        SkeletonLayout.from_parents([-1, 0, 1], body_parts={"arm": [1.5]})
    with pytest.raises(TypeError, match=r"joints\[1\] must be an integer, got 1\.0"):
        get_layout("nturgb+d").select([0, 1.0])
    # Integers of NumPy and one-element integer tensors are integers.
    expected = SkeletonLayout.from_parents([-1, 0, 1, 1]).parents
    assert SkeletonLayout.from_parents(np.array([-1, 0, 1, 1])).parents == expected
    assert SkeletonLayout.from_parents(torch.tensor([-1, 0, 1, 1])).parents == expected
