"""Cross masking: two maskers, each deciding over its own part of the token grid (HA-CM)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple, TypeAlias, get_args

import torch

from skelmask.maskers.attention import GlobalAttentionMasker
from skelmask.maskers.base import MaskContext, MaskDecision, Masker, Priority, Region
from skelmask.maskers.ratio import RatioSpec, check_ratio_spec, nominal_ratio
from skelmask.sampling import num_hidden_tokens
from skelmask.tokens import MaskResult

__all__ = ["CrossMasker", "Partition", "PartitionFn", "PartitionName"]

PartitionName: TypeAlias = Literal["time_parity", "joint_parity"]
"""Built-in partitions: even time (or joint) patches → branch 0, odd ones → branch 1."""

PartitionFn: TypeAlias = Callable[[int, int], torch.Tensor]
"""``(Tp, Vp) -> `` integer or bool ``(Tp, Vp)`` tensor of branch ids 0/1."""

Partition: TypeAlias = "PartitionName | torch.Tensor | PartitionFn"

_PARTITION_NAMES: tuple[PartitionName, ...] = get_args(PartitionName)

_BRANCH_NAMES = ("first", "second")


class _Plan(NamedTuple):
    """How a grid is split: branch id per token, the branches' regions and hidden counts."""

    ids: torch.Tensor  # int64 (L,), time-major
    regions: tuple[Region, Region]
    hidden: tuple[int, int]


class CrossMasker(Masker):
    """Composes any two maskers over a partition of the token grid (HA-CM's cross masking).

    The grid's tokens are split into two branches. Branch 0 is decided by ``first`` and branch
    1 by ``second``, each restricted to its branch with its own criterion, temperature and
    direction; the two decisions are merged into ONE ``MaskResult`` over the whole grid in the
    canonical time-major order (``ids_keep`` ascending), with

    * ``scores`` ``(B, L)``: each token's score from its own branch's masker (0 for a branch
      whose masker has no scores, e.g. random; None when neither has);
    * ``probs`` ``(B, L)``: each branch's sampling softmax, summing to 1 over its branch (None
      when either masker gives none).

    ``visible_branch(result)`` gives the branch (0 or 1) of every visible token, ``(B, K)``,
    e.g. for ``CrossContrastLoss``.

    **Counts.** With a ratio for the whole grid (``mask_ratio=`` here or per call, as
    ``CrossMasker.hacm`` sets), exactly ``num_hidden_tokens(L, ratio)`` tokens are hidden and
    ``round(L·(1 - ratio))`` kept overall; branch 0 hides ``num_hidden_tokens(n_0, ratio)`` of
    its ``n_0`` tokens and branch 1 the rest (each branch hides at least one token and keeps
    one, so on tiny grids the total is clamped to ``[2, L - 2]``). Without one
    (``mask_ratio=None``), each branch hides its own masker's ratio of its tokens, rounded per
    branch. Either way every sample keeps the same number of tokens.

    **Call-time inputs** are passed to both maskers: ``coords`` always, ``attention`` and
    ``root_tokens`` and ``saliency`` to those that read them (an error when neither does), a ``temperature=``
    to each score-guided one.

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

    Differences from the official HA-CM code, on purpose (``docs/hacm.md`` lists each): every
    branch's scores, tokens, mask and restore indices stay in one canonical time-major order;
    ``ids_restore`` is built over the whole grid, so ``restore(gather(x, ids_keep))`` puts every
    visible token of either branch back in its own slot; ratios and temperatures are honoured
    rather than hard-coded; and an odd number of time patches is allowed.

    Args:
        first: Masker of branch 0 (HA-CM: ``GlobalAttentionMasker``).
        second: Masker of branch 1 (HA-CM: the spatial ``HyperbolicHierarchyMasker``).
        partition: ``"time_parity"``, ``"joint_parity"``, a ``(Tp, Vp)`` tensor of branch ids
            or a callable returning one (see above).
        mask_ratio: None (default) lets each branch hide its own masker's ``mask_ratio``; a
            value in (0, 1), a ``(low, high)`` range or a ``RatioSchedule`` is the ratio of
            the whole grid (see Counts). Setting the attribute later sets it the same way;
            reading it without one gives the mean of the two maskers' ratios, a nominal value.
            A range or schedule given to a *branch* masker is read at its nominal value (the
            midpoint, the current value); give it to the ``CrossMasker`` to vary the count.

    Raises:
        TypeError: If a child is not a ``Masker`` or ``partition`` has an unsupported type.
        ValueError: If ``mask_ratio`` or ``partition`` is invalid; at call time, if the grid
            does not fit the partition or a branch holds fewer than 2 tokens.

    Examples:
        >>> from skelmask.maskers.random import RandomMasker
        >>> masker = CrossMasker(GlobalAttentionMasker(0.9), RandomMasker(0.8))
        >>> result = masker(torch.randn(2, 24, 18, 64))
        >>> result.num_keep  # 22 of the 216 even-patch tokens and 43 of the 216 odd-patch ones
        65
        >>> masker.visible_branch(result).shape
        torch.Size([2, 65])
        >>> CrossMasker.hacm(RandomMasker())(torch.randn(2, 30, 25, 8)).num_keep  # of 750
        75
    """

    def __init__(
        self,
        first: Masker,
        second: Masker,
        *,
        partition: Partition = "time_parity",
        mask_ratio: RatioSpec | None = None,
    ) -> None:
        for name, child in zip(_BRANCH_NAMES, (first, second), strict=True):
            if not isinstance(child, Masker):
                raise TypeError(f"{name} must be a Masker, got {type(child).__name__}")
        super().__init__((first.mask_ratio + second.mask_ratio) / 2)
        self.first = first
        self.second = second
        self._grid_ratio = False
        if mask_ratio is not None:
            self.mask_ratio = mask_ratio
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
            mask_ratio: Ratio of the whole grid (HA-CM: 0.9); exactly
                ``round(L·(1 - mask_ratio))`` tokens stay visible.
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

    @property
    def mask_ratio(self) -> float:
        """The whole grid's ratio if set, else the mean of the two maskers' ratios (nominal)."""
        if self.grid_mask_ratio is not None:
            return self.grid_mask_ratio
        return (self.first.mask_ratio + self.second.mask_ratio) / 2

    @mask_ratio.setter
    def mask_ratio(self, value: RatioSpec) -> None:
        self._ratio_spec = check_ratio_spec(value)
        self._grid_ratio = True

    @property
    def grid_mask_ratio(self) -> float | None:
        """The whole grid's ratio, or None when each branch hides its own masker's ratio.

        A range gives its midpoint and a schedule its current value.
        """
        return nominal_ratio(self._ratio_spec) if self._grid_ratio else None

    @property
    def call_inputs(self) -> frozenset[str]:
        """The guidance inputs either masker reads."""
        return self.first.call_inputs | self.second.call_inputs

    @property
    def takes_temperature(self) -> bool:
        """Whether either masker samples from scores."""
        return self.first.takes_temperature or self.second.takes_temperature

    def num_hidden(self, grid_size: tuple[int, int], mask_ratio: float | None = None) -> int:
        """Tokens hidden per sample on a ``(Tp, Vp)`` grid: the sum of the branches' shares."""
        return sum(self._plan(grid_size, torch.device("cpu"), mask_ratio).hidden)

    def branch_ids(self, grid_size: tuple[int, int], device: torch.device) -> torch.Tensor:
        """Int64 ``(L,)`` branch (0 or 1) of every token of a ``(Tp, Vp)`` grid, time-major."""
        return self._plan(grid_size, device, None).ids

    def visible_branch(self, result: MaskResult) -> torch.Tensor:
        """Int64 ``(B, K)`` branch (0 or 1) of every visible token of ``result``."""
        ids = self.branch_ids(result.grid_size, result.ids_keep.device)
        return ids[result.ids_keep]

    def decide(
        self, context: MaskContext, num_hidden: int, mask_ratio: float | None = None
    ) -> MaskDecision:
        """Runs each masker over its branch and merges the two decisions.

        Raises:
            ValueError: If ``context`` has a region (a cross masker partitions the whole grid
                itself) or ``num_hidden`` differs from the branches' shares.
        """
        if context.region is not None:
            raise ValueError(
                "CrossMasker partitions the whole grid itself and cannot decide inside a region; "
                "do not nest it inside another CrossMasker"
            )
        plan = self._plan(context.grid_size, context.tokens.device, mask_ratio)
        if num_hidden != sum(plan.hidden):
            raise ValueError(
                f"CrossMasker hides {sum(plan.hidden)} tokens on a {context.grid_size} grid "
                f"(branches {plan.hidden[0]} + {plan.hidden[1]}), got num_hidden={num_hidden}"
            )
        first, second = (
            child.decide(
                context._replace(
                    region=region,
                    attention=context.attention if "attention" in child.call_inputs else None,
                    root_tokens=(
                        context.root_tokens if "root_tokens" in child.call_inputs else None
                    ),
                    saliency=context.saliency if "saliency" in child.call_inputs else None,
                    temperature=context.temperature if child.takes_temperature else None,
                ),
                hidden,
            )
            for child, region, hidden in zip(
                (self.first, self.second), plan.regions, plan.hidden, strict=True
            )
        )
        in_first = plan.ids == 0
        probs = None
        if first.probs is not None and second.probs is not None:
            probs = torch.where(in_first, first.probs, second.probs)
        return MaskDecision(
            hidden=torch.where(in_first, first.hidden, second.hidden),
            scores=_merge_scores(in_first, first.scores, second.scores),
            probs=probs,
        )

    def priority(self, context: MaskContext) -> Priority:
        """Not used: a cross masker decides branch by branch (see ``decide``)."""
        raise NotImplementedError("CrossMasker decides per branch; call it or its decide()")

    def _plan(
        self, grid_size: tuple[int, int], device: torch.device, mask_ratio: float | None
    ) -> _Plan:
        """Branch ids, regions and hidden counts on a grid, all sizes computed in Python."""
        time_patches, joint_patches = grid_size
        times: tuple[tuple[int, ...] | None, tuple[int, ...] | None] = (None, None)
        if self._partition_name == "time_parity":
            parity = torch.arange(time_patches, device=device) % 2
            ids = parity.unsqueeze(1).expand(time_patches, joint_patches).reshape(-1)
            times = (tuple(range(0, time_patches, 2)), tuple(range(1, time_patches, 2)))
            even = len(times[0])
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
        ratio = self.grid_mask_ratio if mask_ratio is None else mask_ratio
        if ratio is None:
            hidden = (
                num_hidden_tokens(sizes[0], self.first.mask_ratio),
                num_hidden_tokens(sizes[1], self.second.mask_ratio),
            )
        else:
            hidden = _split_count(num_hidden_tokens(sizes[0] + sizes[1], ratio), sizes, ratio)
        regions = (
            Region(mask=ids == 0, size=sizes[0], time_patches=times[0]),
            Region(mask=ids == 1, size=sizes[1], time_patches=times[1]),
        )
        return _Plan(ids=ids, regions=regions, hidden=hidden)

    def extra_repr(self) -> str:
        """Constructor arguments shown by ``repr``."""
        if self._partition_name is not None:
            partition = repr(self._partition_name)
        elif self.partition_ids is not None:
            partition = f"tensor{tuple(self.partition_ids.shape)}"
        else:
            partition = getattr(self._partition_fn, "__name__", "callable")
        ratio = self._ratio_spec if self._grid_ratio else None
        return f"mask_ratio={ratio}, partition={partition}"


def _split_count(total: int, sizes: tuple[int, int], ratio: float) -> tuple[int, int]:
    """Splits ``total`` hidden tokens over two branches, each hiding 1 to ``size - 1``.

    ``total`` is first clamped to ``[2, n_0 + n_1 - 2]``, the counts two such branches can hide.
    """
    total = min(max(total, 2), sizes[0] + sizes[1] - 2)
    low = max(1, total - (sizes[1] - 1))
    high = min(sizes[0] - 1, total - 1)
    first = min(max(num_hidden_tokens(sizes[0], ratio), low), high)
    return first, total - first


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
