"""BodyPartMasker: whole parts, exact counts, fixed parts, clip mode, regions, errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skelmask.layouts import SkeletonLayout, get_layout, list_layouts
from skelmask.maskers.base import MaskContext, Region
from skelmask.maskers.body_part import BodyPartMasker, PartDraw
from skelmask.maskers.cross import CrossMasker
from skelmask.maskers.random import RandomMasker
from skelmask.sampling import num_hidden_tokens
from skelmask.tokens import MaskResult

BUILT_IN = ["nturgb+d", "coco", "openpose", "msr-action3d", "nw-ucla"]


def chain(joints: int) -> SkeletonLayout:
    return SkeletonLayout.from_parents([-1, *range(joints - 1)], name=f"chain-{joints}")


def grid(batch: int, time_patches: int, joint_patches: int) -> torch.Tensor:
    return torch.randn(batch, time_patches, joint_patches, 4)


def patch_parts(masker: BodyPartMasker) -> list[list[int]]:
    """Joint patches of every part of the masker, plus the patches in no part (last entry)."""
    ids = masker.joint_part.tolist()
    return [[v for v, i in enumerate(ids) if i == p] for p in range(len(masker.part_names) + 1)]


def partial_units(
    hidden: torch.Tensor, masker: BodyPartMasker, region: torch.Tensor | None = None
) -> torch.Tensor:
    """Per sample, how many units (part × time patch, or part × clip) are partly hidden.

    ``hidden`` is bool ``(B, Tp, Vp)``; inside a region, a unit is its tokens in the region.
    """
    batch, time_patches, joint_patches = hidden.shape
    inside = (
        torch.ones(time_patches, joint_patches, dtype=torch.bool)
        if region is None
        else region.reshape(time_patches, joint_patches)
    )
    counts = torch.zeros(batch, dtype=torch.int64)
    for patches in patch_parts(masker)[:-1]:
        unit_hidden = hidden[:, :, patches] & inside[:, patches]
        unit_size = inside[:, patches].sum(dim=-1)
        if masker.draw_per == "time_patch":
            hidden_count = unit_hidden.sum(dim=-1)  # (B, Tp)
            partial = (hidden_count > 0) & (hidden_count < unit_size)
            counts += partial.sum(dim=1)
        else:
            hidden_count = unit_hidden.sum(dim=(1, 2))
            partial = (hidden_count > 0) & (hidden_count < unit_size.sum())
            counts += partial.long()
    return counts


def hidden_grid(result: MaskResult) -> torch.Tensor:
    return result.grid_mask.cpu()


@pytest.mark.parametrize("name", BUILT_IN)
def test_fixed_parts_hide_exactly_their_joints_on_every_built_in_layout(name: str) -> None:
    layout = get_layout(name)
    expected = torch.zeros(layout.num_joints, dtype=torch.bool)
    expected[list(layout.body_parts["right_arm"]) + list(layout.body_parts["left_leg"])] = True
    masker = BodyPartMasker(parts=["right_arm", "left_leg"], layout=name)
    for seed in (0, 1):
        result = masker(
            grid(3, 5, layout.num_joints), generator=torch.Generator().manual_seed(seed)
        )
        assert torch.equal(hidden_grid(result), expected.expand(3, 5, -1))
        assert result.num_hidden == 5 * int(expected.sum())
    assert masker.mask_ratio == pytest.approx(float(expected.sum()) / layout.num_joints)


def test_fixed_parts_follow_the_papers_best_coco_choice() -> None:
    masker = BodyPartMasker(parts=["right_arm", "right_leg"], layout="coco", draw_per="time_patch")
    result = masker(grid(2, 3, 17))
    assert result.grid_mask[0, 0].nonzero().flatten().tolist() == [8, 10, 14, 16]


@pytest.mark.parametrize("draw_per", ["time_patch", "clip"])
@pytest.mark.parametrize("num_parts", [1, 2, 3, 4])
def test_equal_size_parts_hide_exactly_num_parts_whole_parts(
    draw_per: PartDraw, num_parts: int
) -> None:
    # NW-UCLA's five parts have four joints each, so no part is ever cut.
    masker = BodyPartMasker(num_parts=num_parts, layout="nw-ucla", draw_per=draw_per)
    result = masker(grid(4, 6, 20), generator=torch.Generator().manual_seed(num_parts))
    parts = torch.stack(
        [hidden_grid(result)[:, :, list(j)] for j in get_layout("nw-ucla").body_parts.values()]
    )  # (P, B, Tp, 4)
    fully = parts.all(dim=-1)
    assert not (parts.any(dim=-1) & ~fully).any()
    assert (fully.sum(dim=0) == num_parts).all()
    assert result.num_hidden == 6 * 4 * num_parts


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("setting", [{"num_parts": 1}, {"num_parts": 3}, {"mask_ratio": 0.45}])
def test_clip_mode_hides_the_same_joints_in_every_time_patch(
    name: str, setting: dict[str, float]
) -> None:
    layout = get_layout(name)
    masker = BodyPartMasker(layout=name, draw_per="clip", **setting)  # type: ignore[arg-type]
    hidden = hidden_grid(masker(grid(5, 7, layout.num_joints)))
    assert torch.equal(hidden, hidden[:, :1].expand_as(hidden))
    assert (hidden.sum(dim=(1, 2)) == masker.num_hidden((7, layout.num_joints))).all()
    assert (partial_units(hidden, masker) <= 1).all()


def test_unequal_parts_use_the_mean_fraction_and_cut_at_most_one_part() -> None:
    masker = BodyPartMasker(num_parts=2, layout="coco", draw_per="time_patch")
    sizes = [len(j) for j in get_layout("coco").body_parts.values()]  # 9, 2, 2, 2, 2
    assert masker.mask_ratio == pytest.approx(2 * sum(sizes) / len(sizes) / 17)
    result = masker(grid(64, 9, 17), generator=torch.Generator().manual_seed(0))
    hidden = hidden_grid(result)
    assert (hidden.sum(dim=(1, 2)) == num_hidden_tokens(9 * 17, masker.mask_ratio)).all()
    assert (partial_units(hidden, masker) <= 1).all()
    # Every part gets hidden in some sample: the order is random, not biased to small parts.
    for joints in get_layout("coco").body_parts.values():
        assert hidden[:, :, list(joints)].all(dim=-1).any()


def test_joints_in_no_part_are_hidden_last() -> None:
    layout = chain(8)
    part_map = {"a": [0, 1], "b": [2, 3, 4], "c": [5]}  # joints 6 and 7 are in no part
    masker = BodyPartMasker(num_parts=3, layout=layout, part_map=part_map, draw_per="time_patch")
    hidden = hidden_grid(masker(grid(6, 4, 8)))
    assert not hidden[:, :, 6:].any()
    assert hidden[:, :, :6].all()
    large = BodyPartMasker(0.9, layout=layout, part_map=part_map, draw_per="time_patch")
    hidden = hidden_grid(large(grid(6, 4, 8)))
    assert hidden[:, :, :6].all()  # every part before any unassigned joint
    assert (hidden[:, :, 6:].sum(dim=(1, 2)) == num_hidden_tokens(32, 0.9) - 24).all()


@st.composite
def masker_and_grid(draw: st.DrawFn) -> tuple[BodyPartMasker, int, int, int]:
    if draw(st.booleans()):
        name = draw(st.sampled_from(BUILT_IN))
        layout = get_layout(name)
        v_patch = 1
        part_map = None
    else:
        # A user layout on a v_patch grid: every part is a set of whole joint patches.
        v_patch = draw(st.integers(1, 3))
        joint_patches = draw(st.integers(2, 9))
        layout = chain(joint_patches * v_patch)
        owner = draw(
            st.lists(st.integers(-1, 4), min_size=joint_patches, max_size=joint_patches).filter(
                lambda ids: len({i for i in ids if i >= 0}) >= 2
            )
        )
        part_map = {
            f"part{p}": [
                v * v_patch + k
                for v in range(joint_patches)
                if owner[v] == p
                for k in range(v_patch)
            ]
            for p in sorted({i for i in owner if i >= 0})
        }
    draw_per = draw(st.sampled_from(["time_patch", "clip"]))
    if draw(st.booleans()):
        setting: dict[str, object] = {"mask_ratio": draw(st.floats(0.01, 0.99))}
    else:
        parts = len(part_map) if part_map is not None else len(layout.body_parts)
        covered = sum(len(j) for j in (part_map or layout.body_parts).values())
        most = parts if covered < layout.num_joints else parts - 1
        setting = {"num_parts": draw(st.integers(1, most))}
    masker = BodyPartMasker(
        layout=layout,
        part_map=part_map,
        draw_per=draw_per,
        v_patch=v_patch,
        **setting,  # type: ignore[arg-type]
    )
    return masker, draw(st.integers(1, 4)), draw(st.integers(1, 8)), layout.num_joints // v_patch


@given(case=masker_and_grid(), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_property_exact_count_whole_parts_and_priority(
    case: tuple[BodyPartMasker, int, int, int], seed: int
) -> None:
    masker, batch, time_patches, joint_patches = case
    result = masker(
        grid(batch, time_patches, joint_patches), generator=torch.Generator().manual_seed(seed)
    )
    hidden = hidden_grid(result)
    expected = masker.num_hidden((time_patches, joint_patches))
    assert (hidden.sum(dim=(1, 2)) == expected).all()
    assert (partial_units(hidden, masker) <= 1).all()
    unassigned = patch_parts(masker)[-1]
    assigned = [v for v in range(joint_patches) if v not in unassigned]
    if unassigned:
        # A joint in no part is hidden only once every part's token is.
        some_unassigned = hidden[:, :, unassigned].any(dim=(1, 2))
        all_assigned = hidden[:, :, assigned].all(dim=(1, 2))
        assert (~some_unassigned | all_assigned).all()
    if masker.draw_per == "clip":
        assert torch.equal(hidden, hidden[:, :1].expand_as(hidden))


@pytest.mark.parametrize("draw_per", ["time_patch", "clip"])
def test_same_generator_seed_reproduces_the_mask(draw_per: PartDraw) -> None:
    masker = BodyPartMasker(0.4, layout="openpose", draw_per=draw_per)
    tokens = grid(4, 6, 18)
    first = masker(tokens, generator=torch.Generator().manual_seed(5)).mask
    again = masker(tokens, generator=torch.Generator().manual_seed(5)).mask
    other = masker(tokens, generator=torch.Generator().manual_seed(6)).mask
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_time_patch_mode_draws_parts_per_time_patch_and_clip_mode_per_clip() -> None:
    tokens = grid(8, 12, 25)
    frame = hidden_grid(BodyPartMasker(num_parts=1, draw_per="time_patch")(tokens))
    clip = hidden_grid(BodyPartMasker(num_parts=1, draw_per="clip")(tokens))
    assert not torch.equal(frame, frame[:, :1].expand_as(frame))
    assert torch.equal(clip, clip[:, :1].expand_as(clip))


@pytest.mark.parametrize("draw_per", ["time_patch", "clip"])
@pytest.mark.parametrize("partition", ["time_parity", "joint_parity"])
def test_inside_a_cross_masker_each_branch_hides_exactly_its_share(
    draw_per: PartDraw, partition: str
) -> None:
    body = BodyPartMasker(0.5, layout="coco", draw_per=draw_per)
    masker = CrossMasker(body, RandomMasker(0.7), partition=partition)  # type: ignore[arg-type]
    time_patches = 7
    tokens = grid(16, time_patches, 17)
    result = masker(tokens, generator=torch.Generator().manual_seed(0))
    region = masker.branch_ids((time_patches, 17), tokens.device) == 0
    sizes = int(region.sum()), int((~region).sum())
    mask = result.mask.cpu()
    assert (mask[:, region].sum(dim=1) == num_hidden_tokens(sizes[0], 0.5)).all()
    assert (mask[:, ~region].sum(dim=1) == num_hidden_tokens(sizes[1], 0.7)).all()
    branch_hidden = (mask & region).reshape(16, time_patches, 17)
    assert (partial_units(branch_hidden, body, region) <= 1).all()


def test_fixed_parts_inside_the_time_parity_branch_are_exactly_those_parts() -> None:
    layout = get_layout("nturgb+d")
    body = BodyPartMasker(parts=["left_arm"], layout=layout)
    masker = CrossMasker(body, RandomMasker(0.5), partition="time_parity")
    hidden = hidden_grid(masker(grid(3, 6, 25)))
    even = hidden[:, 0::2]
    expected = torch.zeros(25, dtype=torch.bool)
    expected[list(layout.body_parts["left_arm"])] = True
    assert torch.equal(even, expected.expand_as(even))


def test_a_region_count_beyond_the_fixed_parts_continues_with_whole_other_parts() -> None:
    masker = BodyPartMasker(parts=["right_arm"], layout="nw-ucla", draw_per="clip")
    tokens = grid(5, 3, 20)
    region = Region(mask=torch.ones(60, dtype=torch.bool), size=60, time_patches=(0, 1, 2))
    decision = masker.decide(MaskContext(tokens, region=region), 24)
    hidden = decision.hidden.reshape(5, 3, 20)
    assert hidden[:, :, 8:12].all()  # the fixed part first
    assert (hidden.sum(dim=(1, 2)) == 24).all()
    assert (partial_units(hidden, masker) == 0).all()  # 12 more tokens: one whole 4-joint part


def test_decide_keeps_tokens_outside_the_region_visible() -> None:
    masker = BodyPartMasker(0.5, layout="msr-action3d", draw_per="time_patch")
    region = torch.zeros(4, 20, dtype=torch.bool)
    region[1:3] = True
    inside = Region(mask=region.flatten(), size=40, time_patches=(1, 2))
    decision = masker.decide(MaskContext(grid(3, 4, 20), region=inside), 17)
    assert not (decision.hidden & ~region.flatten()).any()
    assert (decision.hidden.sum(dim=1) == 17).all()
    assert decision.scores is None
    assert decision.probs is None


@pytest.mark.parametrize("num_hidden", [0, 40])
def test_decide_rejects_a_count_outside_the_region(num_hidden: int) -> None:
    masker = BodyPartMasker(0.5, layout="msr-action3d")
    with pytest.raises(ValueError, match=r"num_hidden must be in \[1, 39\] for 40 tokens"):
        masker.decide(MaskContext(grid(1, 2, 20)), num_hidden)


def test_joint_patch_grid_with_parts_made_of_whole_patches() -> None:
    layout = chain(12)
    part_map = {"upper": [0, 1, 2, 3], "middle": [4, 5], "lower": [6, 7, 8, 9, 10, 11]}
    masker = BodyPartMasker(parts=["middle"], layout=layout, part_map=part_map, v_patch=2)
    hidden = hidden_grid(masker(grid(2, 3, 6)))
    assert torch.equal(
        hidden, torch.tensor([False, False, True, False, False, False]).expand(2, 3, 6)
    )


def test_masks_follow_the_module_device(device: torch.device) -> None:
    masker = BodyPartMasker(num_parts=2, draw_per="time_patch").to(device)
    result = masker(torch.randn(2, 4, 25, 8, device=device))
    assert result.mask.device.type == device.type
    assert result.num_hidden == masker.num_hidden((4, 25))


def test_repr_names_the_setting() -> None:
    assert repr(BodyPartMasker(parts=["trunk"], layout="coco")) == (
        "BodyPartMasker(parts=['trunk'], layout='coco', draw_per='clip', v_patch=1)"
    )


# Built-in layouts only: other tests register layouts of their own in the global registry.
BUILT_IN_LAYOUTS = ("nturgb+d", "coco", "openpose", "msr-action3d", "nw-ucla")


@pytest.mark.parametrize("name", BUILT_IN_LAYOUTS)
def test_every_built_in_layout_is_supported(name: str) -> None:
    assert name in list_layouts()
    layout = get_layout(name)
    masker = BodyPartMasker(num_parts=1, layout=name)
    result = masker(grid(1, 2, layout.num_joints))
    assert result.num_hidden == masker.num_hidden((2, layout.num_joints))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"parts": ["tail"]},
            ValueError,
            r"unknown part\(s\) \['tail'\].*valid parts are \['trunk'",
        ),
        ({"parts": ["trunk", "trunk"]}, ValueError, "repeats a name"),
        ({"parts": []}, ValueError, "at least one"),
        ({"parts": "trunk"}, TypeError, "not the string 'trunk'"),
        ({"parts": ["trunk"], "num_parts": 1}, ValueError, "parts or num_parts, not both"),
        ({"parts": ["trunk"], "mask_ratio": 0.3}, ValueError, "parts fixes the count"),
        ({"num_parts": 2, "mask_ratio": 0.3}, ValueError, "both set the count"),
        ({}, ValueError, "give one of parts, num_parts or mask_ratio"),
        ({"num_parts": 0}, ValueError, r"num_parts must be in \[1, 4\]"),
        ({"num_parts": 5}, ValueError, r"num_parts must be in \[1, 4\]"),
        ({"num_parts": 1.0}, TypeError, "num_parts must be an int"),
        ({"num_parts": True}, TypeError, "num_parts must be an int"),
        ({"mask_ratio": 1.0}, ValueError, r"mask_ratio must be in the open interval"),
        ({"num_parts": 1, "draw_per": "token"}, ValueError, "draw_per must be one of"),
        (
            {"parts": ["trunk", "left_arm", "right_arm", "left_leg", "right_leg"]},
            ValueError,
            "cover every joint",
        ),
        ({"num_parts": 1, "v_patch": 2}, ValueError, "v_patch=2 must divide the joint count V=25"),
        (
            {"num_parts": 1, "v_patch": 5},
            ValueError,
            "does not map the body parts onto joint patches",
        ),
        ({"num_parts": 1, "v_patch": 0}, ValueError, "v_patch must be a positive integer"),
        ({"num_parts": 1, "part_map": {}}, ValueError, "part_map is empty"),
        ({"num_parts": 1, "part_map": {"a": [0, 1], "b": [1]}}, ValueError, "both 'a' and 'b'"),
        ({"num_parts": 1, "part_map": {"a": [0, 25]}}, ValueError, r"\[25\] outside \[0, 25\)"),
        ({"num_parts": 1, "part_map": {"a": []}}, ValueError, r"part_map\['a'\] is empty"),
        ({"num_parts": 1, "layout": "kinect"}, KeyError, "unknown layout 'kinect'"),
    ],
)
def test_bad_arguments_are_clear_errors(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        BodyPartMasker(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("setting", [{"parts": ["trunk"]}, {"num_parts": 2}])
def test_a_fixed_count_refuses_a_mask_ratio_set_later_or_per_call(
    setting: dict[str, object],
) -> None:
    masker = BodyPartMasker(**setting)  # type: ignore[arg-type]
    derived = masker.mask_ratio
    tokens = grid(2, 4, 25)
    fixed = f"BodyPartMasker\\({next(iter(setting))}=.*\\) hides a fixed set of parts"
    with pytest.raises(ValueError, match=fixed + r".*got 0\.5"):
        masker.mask_ratio = 0.5
    with pytest.raises(ValueError, match=fixed + r".*got 0\.6"):
        masker(tokens, mask_ratio=0.6)
    # Nothing changed: the count is still the one the setting fixes.
    assert masker.mask_ratio == derived
    assert masker(tokens).num_hidden == masker.num_hidden((4, 25))


def test_a_ratio_built_masker_takes_a_ratio_per_call_or_set_later() -> None:
    masker = BodyPartMasker(0.3, draw_per="clip")
    tokens = grid(2, 4, 25)
    assert masker(tokens, mask_ratio=0.6).num_hidden == 4 * num_hidden_tokens(25, 0.6)
    assert masker(tokens).num_hidden == 4 * num_hidden_tokens(25, 0.3)
    masker.mask_ratio = 0.6
    assert masker(tokens).num_hidden == 4 * num_hidden_tokens(25, 0.6)
    with pytest.raises(ValueError, match=r"mask_ratio must be in the open interval"):
        masker.mask_ratio = 1.0
    with pytest.raises(ValueError, match="takes no temperature"):
        masker(tokens, temperature=0.5)


def test_a_layout_without_parts_needs_a_part_map() -> None:
    with pytest.raises(ValueError, match="layout 'chain-4' body_parts is empty; pass part_map"):
        BodyPartMasker(num_parts=1, layout=chain(4))


@pytest.mark.parametrize("joint_patches", [24, 12])
def test_a_grid_that_does_not_match_the_layout_is_an_error(joint_patches: int) -> None:
    masker = BodyPartMasker(num_parts=1)
    with pytest.raises(ValueError, match=f"Vp={joint_patches} joint patches .* has 25"):
        masker(grid(1, 2, joint_patches))


def user_parts(sizes: Sequence[int]) -> dict[str, list[int]]:
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return {
        f"p{i}": list(range(s, s + n)) for i, (s, n) in enumerate(zip(starts, sizes, strict=True))
    }


def test_user_parts_of_very_different_sizes_keep_the_count_exact() -> None:
    layout = chain(16)
    masker = BodyPartMasker(
        num_parts=1, layout=layout, part_map=user_parts([1, 12, 3]), draw_per="time_patch"
    )
    hidden = hidden_grid(masker(grid(32, 5, 16), generator=torch.Generator().manual_seed(3)))
    assert (hidden.sum(dim=(1, 2)) == num_hidden_tokens(80, 16 / 3 / 16)).all()
    assert (partial_units(hidden, masker) <= 1).all()
