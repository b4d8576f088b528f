"""Cross masking: two maskers, each deciding over its own part of the token grid (HA-CM)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, TypeAlias, get_args

import torch

from skelmask._checks import check_mask_ratio, check_token_grid
from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import MaskDecision, Masker
from skelmask.sampling import num_hidden_tokens
from skelmask.tokens import MaskResult, mask_result_from_bool

__all__ = ["CrossMasker", "Partition", "PartitionFn", "PartitionName"]

PartitionName: TypeAlias = Literal["time_parity", "joint_parity"]
"""Built-in partitions: even time (or joint) patches → branch 0, odd ones → branch 1."""

PartitionFn: TypeAlias = Callable[[int, int], torch.Tensor]
"""``(Tp, Vp) -> `` integer or bool ``(Tp, Vp)`` tensor of branch ids 0/1."""

Partition: TypeAlias = "PartitionName | torch.Tensor | PartitionFn"

_PARTITION_NAMES: tuple[PartitionName, ...] = get_args(PartitionName)

_BRANCH_NAMES = ("first", "second")


class _Plan(NamedTuple):
    """How a grid is split: branch id per token, and tokens and hidden tokens per branch."""

    ids: torch.Tensor  # int64 (L,), time-major
    sizes: tuple[int, int]
    hidden: tuple[int, int]


class CrossMasker(Masker):
    """Composes two maskers over a partition of the token grid (HA-CM's cross masking).

    The grid's tokens are split into two branches. Branch 0 is decided by ``first`` and branch
    1 by ``second``, each through ``decide`` restricted to
    its branch, with its own temperature and direction. Branch ``c`` with ``n_c`` tokens hides
    exactly ``num_hidden_tokens(n_c, ratio_c)`` of them, so every sample keeps the same number
    of tokens. The result is ONE ``MaskResult`` over the whole grid in the
    canonical time-major order (``ids_keep`` ascending), with

    * ``branch`` ``(B, K)``: the branch (0 or 1) each visible token belongs to;
    * ``scores`` ``(B, L)``: each token's score from its own branch's masker (0 for a branch
      whose masker has no scores, e.g. random; None when neither has);
    * ``probs`` ``(B, L)``: each branch's sampling softmax, summing to 1 over its branch (None
      when either masker gives none).

    Partitions (``partition``):

    * ``"time_parity"`` (default, HA-CM): even time patches → ``first`` (HA-CM's temporal
      attention), odd time patches → ``second`` (HA-CM's spatial hierarchy). With an odd
      ``Tp`` the even branch holds one more time patch.
    * ``"joint_parity"``: even joint patches → ``first``, odd ones → ``second``.
    * A fixed integer or bool tensor ``(Tp, Vp)`` of branch ids 0/1 (checked at construction,
      moved with the module; the grid must have that size).
    * A callable ``(Tp, Vp) -> (Tp, Vp)`` tensor of branch ids, evaluated and checked at every
      call. Its ids are read back in Python, so under ``torch.compile(fullgraph=True)`` use a
      name or a fixed tensor instead.

    Both branches must hold at least 2 tokens, so that each hides one and keeps one.

    Reference: Yin & Cao, "Spatial Hierarchy and Temporal Attention Guided Cross Masking for
    Self-supervised Skeleton-based Action Recognition", arXiv:2409.17951 (HA-CM).

    Differences from the official HA-CM code, on purpose: every branch's scores, tokens, mask
    and restore indices stay in one canonical time-major order (the code flattens the spatial
    scores joint-major against frame-major tokens, bug B5, and the temporal tokens joint-major
    against a frame-major target, B7); ``ids_restore`` is built over the whole grid, so
    ``restore(gather(x, ids_keep))`` puts every visible token of either branch back in its own
    slot (the code offsets the spatial branch by a hard-coded 216 and overwrites masked
    temporal slots, B6); ratios and temperatures are honoured rather than hard-coded (B15); and
    an odd number of time patches is allowed (B22).

    Args:
        first: Masker of branch 0 (HA-CM: ``GlobalAttentionMasker``).
        second: Masker of branch 1 (HA-CM: the spatial ``HyperbolicHierarchyMasker``).
        partition: ``"time_parity"``, ``"joint_parity"``, a ``(Tp, Vp)`` tensor of branch ids
            or a callable returning one (see above).
        mask_ratio: None (default) lets each branch hide its own masker's ``mask_ratio``; a
            value in (0, 1) overrides both branches' ratios. The ``mask_ratio`` attribute holds
            the override, or else the mean of the two ratios, as a nominal value; the exact
            count on a grid is ``num_hidden``.

    Raises:
        TypeError: If a child is not a ``Masker`` or ``partition``
            has an unsupported type.
        ValueError: If ``mask_ratio`` or ``partition`` is invalid; at call time, if the grid
            does not fit the partition, a branch holds fewer than 2 tokens, or a child cannot
            mask inside a region (e.g. ``RandomMasker(granularity="joint")``).

    Examples:
        >>> from skelmask.maskers.random import RandomMasker
        >>> masker = CrossMasker(GlobalAttentionMasker(0.9), RandomMasker(0.8))
        >>> result = masker(torch.randn(2, 24, 18, 64))
        >>> result.num_keep  # 22 of the 216 even-patch tokens and 43 of the 216 odd-patch ones
        65
        >>> result.branch.shape, result.scores.shape
        (torch.Size([2, 65]), torch.Size([2, 432]))
    """

    def __init__(
        self,
        first: Masker,
        second: Masker,
        *,
        partition: Partition = "time_parity",
        mask_ratio: float | None = None,
    ) -> None:
        for name, child in zip(_BRANCH_NAMES, (first, second), strict=True):
            if not isinstance(child, Masker):
                raise TypeError(f"{name} must be a Masker, got {type(child).__name__}")
        if mask_ratio is None:
            super().__init__((first.mask_ratio + second.mask_ratio) / 2)
            self.branch_mask_ratio: float | None = None
        else:
            super().__init__(mask_ratio)
            self.branch_mask_ratio = check_mask_ratio(mask_ratio)
        self.first = first
        self.second = second
        self._partition_name: PartitionName | None = None
        self._partition_fn: PartitionFn | None = None
        self._partition_sizes: tuple[int, int] = (0, 0)
        self.partition_ids: torch.Tensor | None
        fixed_ids: torch.Tensor | None = None
        if isinstance(partition, str):
            if partition not in _PARTITION_NAMES:
                raise ValueError(
                    f"partition must be one of {list(_PARTITION_NAMES)}, a (Tp, Vp) tensor of "
                    f"branch ids or a callable (Tp, Vp) -> tensor, got {partition!r}"
                )
            self._partition_name = partition
        elif isinstance(partition, torch.Tensor):
            fixed_ids, self._partition_sizes = _check_partition_ids(partition, "partition", None)
        elif callable(partition):
            self._partition_fn = partition
        else:
            raise TypeError(
                "partition must be a name, a (Tp, Vp) tensor of branch ids or a callable "
                f"(Tp, Vp) -> tensor, got {type(partition).__name__}"
            )
        # A buffer, so that a fixed partition follows the module's device; not persistent,
        # because it is configuration that the constructor rebuilds.
        self.register_buffer("partition_ids", fixed_ids, persistent=False)

    @classmethod
    def hacm(
        cls, spatial: Masker, *, mask_ratio: float = 0.9, temperature: float = 0.9
    ) -> CrossMasker:
        """HA-CM's composition: global temporal attention on even time patches, ``spatial`` on odd.

        Args:
            spatial: The odd-patch masker; HA-CM's is ``HyperbolicHierarchyMasker``.
            mask_ratio: Ratio hidden in each branch (HA-CM: 0.9); overrides ``spatial``'s.
            temperature: Temperature of the temporal branch (HA-CM: 0.9); ``spatial`` keeps its
                own.

        Returns:
            The cross masker with the ``"time_parity"`` partition.

        Examples:
            >>> from skelmask.maskers.random import RandomMasker
            >>> masker = CrossMasker.hacm(RandomMasker(), mask_ratio=0.9)
            >>> type(masker.first).__name__, masker.first.direction
            ('GlobalAttentionMasker', 'keep_high')
        """
        temporal = GlobalAttentionMasker(mask_ratio, temperature=temperature)
        return cls(temporal, spatial, partition="time_parity", mask_ratio=mask_ratio)

    def num_hidden(self, grid_size: tuple[int, int]) -> int:
        """Tokens hidden per sample on a ``(Tp, Vp)`` grid: the sum of the branches' shares."""
        return sum(self._plan(grid_size, torch.device("cpu")).hidden)

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        attention: torch.Tensor | None = None,
    ) -> MaskResult:
        """Masks each branch with its own masker and merges the decisions.

        Args:
            tokens: Token grid ``(B, Tp, Vp, D)``; read, not modified.
            coords: Raw coordinates ``(B, T, V, C)``, passed to both maskers.
            generator: Optional ``torch.Generator`` (eager mode only), used by ``first`` and
                then by ``second``.
            attention: Optional ``(B, Vp, Tp, Tp)`` attention map over the whole grid (rows =
                queries, softmaxed over keys), routed to every child that is a
                ``GlobalAttentionMasker``; it is restricted to that child's branch.

        Returns:
            The mask result over the whole grid, with ``branch`` ``(B, K)``.
        """
        batch, time_patches, joint_patches, _ = check_token_grid(tokens)
        plan = self._plan((time_patches, joint_patches), tokens.device)
        decision = self._decide(tokens, plan, coords, generator, attention)
        return mask_result_from_bool(
            decision.hidden,
            time_patches * joint_patches - sum(plan.hidden),
            (time_patches, joint_patches),
            scores=decision.scores,
            probs=decision.probs,
            branch=plan.ids.expand(batch, -1),
            validate=False,
        )

    def decide(
        self,
        tokens: torch.Tensor,
        *,
        coords: torch.Tensor | None,
        generator: torch.Generator | None,
        region: torch.Tensor | None,
        num_hidden: int,
        region_size: int | None = None,
        attention: torch.Tensor | None = None,
    ) -> MaskDecision:
        """Decides over the whole grid (see ``decide``).

        Raises:
            ValueError: If ``region`` is given (a cross masker partitions the whole grid
                itself) or ``num_hidden`` differs from ``num_hidden`` of the grid.
        """
        if region is not None:
            raise ValueError(
                "CrossMasker partitions the whole grid itself and cannot decide inside a region; "
                "do not nest it inside another CrossMasker"
            )
        _, time_patches, joint_patches, _ = tokens.shape
        plan = self._plan((time_patches, joint_patches), tokens.device)
        if num_hidden != sum(plan.hidden):
            raise ValueError(
                f"CrossMasker hides {sum(plan.hidden)} tokens on a {time_patches}×"
                f"{joint_patches} grid (branches {plan.hidden[0]} + {plan.hidden[1]}), got "
                f"num_hidden={num_hidden}"
            )
        return self._decide(tokens, plan, coords, generator, attention)

    def _decide(
        self,
        tokens: torch.Tensor,
        plan: _Plan,
        coords: torch.Tensor | None,
        generator: torch.Generator | None,
        attention: torch.Tensor | None,
    ) -> MaskDecision:
        """Runs each child over its branch and merges the two decisions."""
        children = (self.first, self.second)
        if attention is not None and not any(
            isinstance(child, GlobalAttentionMasker) for child in children
        ):
            raise ValueError(
                "attention was given but neither child is a GlobalAttentionMasker to use it"
            )
        decisions = []
        for branch_id, child in enumerate(children):
            region = plan.ids == branch_id
            takes_attention = attention is not None and isinstance(child, GlobalAttentionMasker)
            extra: dict[str, Any] = {"attention": attention} if takes_attention else {}
            decision = child.decide(
                tokens,
                coords=coords,
                generator=generator,
                region=region,
                num_hidden=plan.hidden[branch_id],
                region_size=plan.sizes[branch_id],
                **extra,
            )
            decisions.append(decision)
        in_first = plan.ids == 0
        first, second = decisions
        probs = None
        if first.probs is not None and second.probs is not None:
            probs = torch.where(in_first, first.probs, second.probs)
        return MaskDecision(
            hidden=torch.where(in_first, first.hidden, second.hidden),
            scores=_merge_scores(in_first, first.scores, second.scores),
            probs=probs,
        )

    def _plan(self, grid_size: tuple[int, int], device: torch.device) -> _Plan:
        """Branch ids, sizes and hidden counts on a grid, all sizes computed in Python."""
        time_patches, joint_patches = grid_size
        if self._partition_name == "time_parity":
            parity = torch.arange(time_patches, device=device) % 2
            ids = parity.unsqueeze(1).expand(time_patches, joint_patches).reshape(-1)
            even = (time_patches + 1) // 2
            sizes = (even * joint_patches, (time_patches - even) * joint_patches)
        elif self._partition_name == "joint_parity":
            parity = torch.arange(joint_patches, device=device) % 2
            ids = parity.unsqueeze(0).expand(time_patches, joint_patches).reshape(-1)
            even = (joint_patches + 1) // 2
            sizes = (even * time_patches, (joint_patches - even) * time_patches)
        elif self.partition_ids is not None:
            if tuple(self.partition_ids.shape) != grid_size:
                raise ValueError(
                    f"partition has shape {tuple(self.partition_ids.shape)} but the token grid "
                    f"is (Tp, Vp) = {grid_size}"
                )
            ids = self.partition_ids.to(device).reshape(-1)
            sizes = self._partition_sizes
        else:
            assert self._partition_fn is not None  # the constructor sets exactly one source
            grid_ids, sizes = _check_partition_ids(
                self._partition_fn(time_patches, joint_patches), "partition(Tp, Vp)", grid_size
            )
            ids = grid_ids.to(device).reshape(-1)
        for name, size in zip(_BRANCH_NAMES, sizes, strict=True):
            if size < 2:
                raise ValueError(
                    f"partition gives the {name} masker's branch {size} token(s) on a "
                    f"{time_patches}×{joint_patches} grid; each branch needs at least 2 (one "
                    "hidden, one kept)"
                )
        ratios = [
            child.mask_ratio if self.branch_mask_ratio is None else self.branch_mask_ratio
            for child in (self.first, self.second)
        ]
        hidden = (num_hidden_tokens(sizes[0], ratios[0]), num_hidden_tokens(sizes[1], ratios[1]))
        return _Plan(ids=ids, sizes=sizes, hidden=hidden)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        if self._partition_name is not None:
            partition = repr(self._partition_name)
        elif self.partition_ids is not None:
            partition = f"tensor{tuple(self.partition_ids.shape)}"
        else:
            partition = getattr(self._partition_fn, "__name__", "callable")
        return f"mask_ratio={self.branch_mask_ratio}, partition={partition}"


def _check_partition_ids(
    ids: object, name: str, grid_size: tuple[int, int] | None
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Checks a ``(Tp, Vp)`` tensor of branch ids; returns it as int64 with the branch sizes."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of branch ids, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex:
        raise ValueError(f"{name} must hold integer or bool branch ids 0/1, got dtype {ids.dtype}")
    if ids.dim() != 2 or (grid_size is not None and tuple(ids.shape) != grid_size):
        expected = "(Tp, Vp)" if grid_size is None else f"(Tp, Vp) = {grid_size}"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(ids.shape)}")
    values = ids.detach().to("cpu", torch.int64)
    if not bool(((values == 0) | (values == 1)).all()):
        raise ValueError(
            f"{name} must hold only branch ids 0 and 1, got values {torch.unique(values).tolist()}"
        )
    second = int(values.sum())
    first = values.numel() - second
    if first == 0 or second == 0:
        empty = _BRANCH_NAMES[0] if first == 0 else _BRANCH_NAMES[1]
        raise ValueError(
            f"{name} gives the {empty} masker no tokens; both branches 0 and 1 must be non-empty"
        )
    return values.to(ids.device), (first, second)


def _merge_scores(
    in_first: torch.Tensor, first: torch.Tensor | None, second: torch.Tensor | None
) -> torch.Tensor | None:
    """Each token's score from its own branch; a branch without scores contributes zeros."""
    if first is None:
        if second is None:
            return None
        first = torch.zeros_like(second)
    elif second is None:
        second = torch.zeros_like(first)
    return torch.where(in_first, first, second)
