from __future__ import annotations

from typing import Any

import pytest
import torch

from skelmask.models import (
    HeadKind,
    Preset,
    SkeletonClassifier,
    SkeletonEncoder,
    create_mae,
    encoder_state_from_mae,
)

TINY: dict[str, Any] = {
    "num_frames": 8,
    "embed_dim": 16,
    "depth": 2,
    "num_heads": 2,
    "decoder_dim": 8,
    "decoder_depth": 1,
}


def matching_encoder(preset: Preset) -> SkeletonEncoder:
    """A fresh encoder with the geometry of ``create_mae(preset, layout="coco", **TINY)``."""
    return SkeletonEncoder(
        num_joints=17, num_frames=8, embed_dim=16, depth=2, num_heads=2, hyperbolic=preset == "hacm"
    )


@pytest.mark.parametrize("head", ["linear", "finetune"])
@pytest.mark.parametrize("preset", ["mae", "mamp", "hacm"])
def test_pretrained_encoder_loads_with_only_head_keys_missing(
    preset: Preset, head: HeadKind
) -> None:
    torch.manual_seed(0)
    mae = create_mae(preset, layout="coco", **TINY)
    checkpoint = {"model": mae.state_dict()}
    classifier = SkeletonClassifier(matching_encoder(preset), num_classes=5, head=head)
    encoder_state = encoder_state_from_mae(checkpoint["model"])
    result = classifier.load_state_dict(
        {f"encoder.{key}": value for key, value in encoder_state.items()}, strict=False
    )
    assert result.unexpected_keys == []
    assert result.missing_keys
    assert all(key.startswith("head.") for key in result.missing_keys)
    assert {"head.fc.weight", "head.fc.bias"} <= set(result.missing_keys)
    x = torch.randn(2, 3, 8, 17, 2)
    torch.testing.assert_close(
        classifier.encoder.eval().forward_features(x), mae.encoder.eval().forward_features(x)
    )


def test_encoder_state_drops_masker_and_decoder_and_unwraps_prefixes() -> None:
    mae = create_mae("hacm", layout="coco", **TINY)
    state = mae.state_dict()
    # HA-CM's masker has a fixed curvature and no state; a learnable-curvature one adds its
    # parameter, which must not reach the encoder either.
    assert not any(key.startswith("masker.") for key in state)
    state["masker.second.embedding.ball.isp_c"] = torch.tensor(0.5413)
    assert any(key.startswith("decoder_") for key in state)
    plain = encoder_state_from_mae(state)
    assert set(plain) == set(mae.encoder.state_dict())
    wrapped = {f"module._orig_mod.{key}": value for key, value in state.items()}
    assert set(encoder_state_from_mae(wrapped)) == set(plain)
    with pytest.raises(ValueError, match="no 'encoder"):
        encoder_state_from_mae({"weight": torch.zeros(1)})


@pytest.mark.parametrize(
    ("head", "names"), [("linear", ["norm", "dropout", "fc"]), ("finetune", ["dropout", "fc"])]
)
def test_heads(head: HeadKind, names: list[str]) -> None:
    classifier = SkeletonClassifier(matching_encoder("mae"), num_classes=7, head=head, dropout=0.2)
    assert [name for name, _ in classifier.head.named_children()] == names
    logits = classifier(torch.randn(4, 3, 8, 17, 2))
    assert logits.shape == (4, 7)
    params = [name for name, _ in classifier.named_parameters()]
    assert all(name.startswith(("encoder.", "head.")) for name in params)
    if head == "linear":
        norm = classifier.head.norm
        assert isinstance(norm, torch.nn.BatchNorm1d)
        assert not norm.affine


def test_classifier_is_the_head_on_forward_features() -> None:
    classifier = SkeletonClassifier(matching_encoder("hacm"), num_classes=3).eval()
    x = torch.randn(2, 3, 8, 17, 2)
    torch.testing.assert_close(
        classifier(x), classifier.head(classifier.encoder.forward_features(x))
    )


def test_layer_ids_and_no_weight_decay() -> None:
    classifier = SkeletonClassifier(matching_encoder("mae"), num_classes=3, head="finetune")
    names = dict(classifier.named_parameters())
    ids = {name: classifier.layer_id(name) for name in names}
    assert ids["encoder.time_embed"] == 0
    assert ids["encoder.blocks.0.attn.proj.weight"] == 1
    assert ids["head.fc.weight"] == ids["encoder.norm.weight"] == 3
    assert classifier.no_weight_decay() == {"encoder.joint_embed", "encoder.time_embed"}
    assert classifier.no_weight_decay() <= set(names)
    with pytest.raises(ValueError, match="not a parameter name"):
        classifier.layer_id("decoder_pred.weight")


def test_finetune_gradients_reach_every_parameter() -> None:
    classifier = SkeletonClassifier(matching_encoder("hacm"), num_classes=3, head="finetune")
    logits = classifier(torch.randn(4, 3, 8, 17, 2))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    assert all(
        p.grad is not None and bool(p.grad.isfinite().all())
        for p in classifier.parameters()
        if p.requires_grad
    )


@pytest.mark.parametrize("preset", ["mae", "mamp", "hacm"])
def test_drop_path_is_for_the_classifier_only(preset: Preset) -> None:
    mae = create_mae(preset, layout="coco", **TINY)
    assert [block.drop_path.p for block in mae.encoder.blocks] == [0.0, 0.0]  # pretraining
    encoder = matching_encoder(preset)
    classifier = SkeletonClassifier(encoder, num_classes=3, head="finetune", drop_path=0.3)
    assert [block.drop_path.p for block in classifier.encoder.blocks] == [0.0, 0.3]
    # A pretraining checkpoint's encoder still loads strictly into the drop-path encoder.
    classifier.encoder.load_state_dict(encoder_state_from_mae(mae.state_dict()))
    kept = SkeletonClassifier(classifier.encoder, num_classes=3)  # None: rates as they are
    assert [block.drop_path.p for block in kept.encoder.blocks] == [0.0, 0.3]


def test_bad_arguments_and_inputs() -> None:
    encoder = matching_encoder("mae")
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        SkeletonClassifier(encoder, num_classes=0)
    with pytest.raises(ValueError, match="head must be one of"):
        SkeletonClassifier(encoder, num_classes=3, head="mlp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        SkeletonClassifier(encoder, num_classes=3, dropout=1.0)
    with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\), got 1.0"):
        SkeletonClassifier(encoder, num_classes=3, drop_path=1.0)
    with pytest.raises(TypeError, match="SkeletonEncoder"):
        SkeletonClassifier(torch.nn.Identity(), num_classes=3)  # type: ignore[arg-type]
    classifier = SkeletonClassifier(encoder, num_classes=3)
    with pytest.raises(ValueError, match="C == in_channels = 3"):
        classifier(torch.randn(2, 2, 8, 17, 1))


def test_runs_on_device(device: torch.device) -> None:
    classifier = SkeletonClassifier(matching_encoder("hacm"), num_classes=3).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits = classifier(torch.randn(4, 3, 8, 17, 2, device=device))
    assert logits.shape == (4, 3)
    assert bool(logits.isfinite().all())
