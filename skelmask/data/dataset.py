"""A PyTorch dataset over ``SkeletonArrays`` with MAMP / HA-CM's crop, resize and rotation.

Training transform (MAMP's and HA-CM's ``valid_crop_resize`` + ``random_rot``), with an optional
view normalisation first (``normalize_view``, see ``skelmask.data.view``) and two opt-in
SkeletonCLR / AimCLR augmentations (off by default):

0. optional temporal padding (``temporal_padding = P > 0``): the ``L`` valid frames are padded by
   reflection with ``P`` frames on both sides and a random window of ``L`` consecutive frames of
   the ``L + 2P`` is kept, a random shift of up to ``P`` frames either way (see
   ``reflect_indices``);
1. crop a random ratio ``p ~ U(crop_ratio)`` of the sample's valid frames (at least
   ``min_frames``, at most all of them) at a random start;
2. resize the crop to ``window`` frames by linear interpolation along time;
3. rotate the xyz channels by one random rotation per sample, angles ``U(-rotation, rotation)``
   about x, y and z;
4. optional shear (``shear = s > 0``): ``xyz ← S @ xyz`` with ``S`` the identity plus six
   off-diagonal entries ``U(-s, s)`` per sample (see ``shear_matrix``);
5. optional velocity input (``velocity=True``): the clip's frame differences
   ``x[t + 1] - x[t]``, the last frame 0 (see ``to_velocity``).

Evaluation transform: the centred ``eval_crop_ratio`` of the valid frames, resized, not rotated,
sheared or shifted; with ``velocity`` its frame differences too.

Velocity is taken from the clip the model receives, after the window was cropped and resized,
as MAMP's and HA-CM's feeders do (``vel``): each difference spans one frame of the window
whatever the clip's original length. The window holds valid frames only, so the last one is the
only frame without a successor. Rotation and shear act on every frame alike and commute with
the difference, so their order does not matter.

Only the frames a clip needs are read from ``arrays.data``, so the dataset works on a
memory-mapped array (``skelmask.data.prepared.load_prepared``) without loading it.

Resizing samples the crop at ``window`` evenly spaced positions from its first to its last frame
(``align_corners=True``), so a full crop keeps the first and last valid frames exactly; MAMP's
``F.interpolate(..., align_corners=False)`` differs from this by under half a frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset, get_worker_info

from skelmask._checks import as_integer, as_real, as_real_pair, check_flags
from skelmask.data.arrays import SkeletonArrays
from skelmask.data.errors import SkeletonFileError
from skelmask.data.prepared import FileIdentity, map_prepared_data
from skelmask.data.view import ViewJoints, normalize_view, view_joints

__all__ = [
    "SkeletonDataset",
    "crop_and_resize",
    "reflect_indices",
    "rotate",
    "rotation_matrix",
    "shear",
    "shear_matrix",
    "to_velocity",
]

FloatArray = npt.NDArray[np.floating]


def rotation_matrix(angles: npt.ArrayLike) -> FloatArray:
    """Rotation matrices ``Rz(γ) · Ry(β) · Rx(α)`` (MAMP's ``_rot`` order) from angles ``(α, β, γ)``.

    Args:
        angles: Radians about x, y and z, shape ``(..., 3)``.

    Returns:
        Matrices of shape ``(..., 3, 3)`` in the floating dtype of ``angles`` (float64 for other
        inputs); apply as ``R @ xyz``.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data import rotation_matrix
        >>> rotation_matrix([0.0, 0.0, np.pi / 2]).round(6) @ np.array([1.0, 0.0, 0.0])
        array([0., 1., 0.])
    """
    values = np.asarray(angles)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    cosine, sine = np.cos(values), np.sin(values)
    ca, cb, cg = (cosine[..., axis] for axis in range(3))
    sa, sb, sg = (sine[..., axis] for axis in range(3))
    result: FloatArray = np.empty((*values.shape[:-1], 3, 3), dtype=values.dtype)
    result[..., 0, 0] = cg * cb
    result[..., 0, 1] = cg * sb * sa - sg * ca
    result[..., 0, 2] = cg * sb * ca + sg * sa
    result[..., 1, 0] = sg * cb
    result[..., 1, 1] = sg * sb * sa + cg * ca
    result[..., 1, 2] = sg * sb * ca - cg * sa
    result[..., 2, 0] = -sb
    result[..., 2, 1] = cb * sa
    result[..., 2, 2] = cb * ca
    return result


def shear_matrix(amounts: npt.ArrayLike) -> FloatArray:
    """Shear matrices: the identity with the six off-diagonal entries taken from ``amounts``.

    Args:
        amounts: Off-diagonal entries in row-major order ``(S01, S02, S10, S12, S20, S21)``,
            shape ``(..., 6)``.

    Returns:
        Matrices of shape ``(..., 3, 3)`` in the floating dtype of ``amounts`` (float64 for
        other inputs); apply as ``S @ xyz``.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data.dataset import shear_matrix
        >>> shear_matrix([0.5, 0.0, 0.0, 0.0, 0.0, 0.0]) @ np.array([1.0, 2.0, 3.0])
        array([2., 2., 3.])
    """
    values = np.asarray(amounts)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    result: FloatArray = np.broadcast_to(
        np.eye(3, dtype=values.dtype), (*values.shape[:-1], 3, 3)
    ).copy()
    rows, columns = np.nonzero(~np.eye(3, dtype=bool))
    result[..., rows, columns] = values
    return result


def shear(x: FloatArray, amounts: npt.ArrayLike, spatial_dims: int = 3) -> FloatArray:
    """Shears the spatial channels of one sample; other channels (scores) are kept.

    Args:
        x: One sample, shape ``(C, T, V, M)``.
        amounts: Off-diagonal entries of ``shear_matrix``, shape ``(6,)``.
        spatial_dims: 3: channels 0–2 are xyz and get ``shear_matrix(amounts)``; 2: channels 0–1
            are in-plane xy and get its top-left 2×2 block (entries ``S01`` and ``S10``); 0 or 1:
            nothing is sheared.

    Returns:
        The sheared copy, same shape and dtype as ``x``.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data.dataset import shear
        >>> x = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1)
        >>> shear(x, [0.0, 0.0, 0.0, 0.0, 0.1, -0.1]).ravel().round(6).tolist()
        [1.0, 2.0, 2.9]
    """
    result: FloatArray = x.copy()
    if spatial_dims < 2:
        return result
    matrix = shear_matrix(np.asarray(amounts, dtype=np.float64))[:spatial_dims, :spatial_dims]
    result[:spatial_dims] = np.einsum("ij,jtvm->itvm", matrix.astype(x.dtype), x[:spatial_dims])
    return result


def reflect_indices(length: int, padding: int) -> npt.NDArray[np.int64]:
    """Frame indices of ``length`` frames padded by reflection with ``padding`` on both sides.

    The reflection excludes the edge frame (``numpy.pad``'s ``"reflect"`` mode) and repeats for
    paddings longer than the sequence; a single frame is repeated.

    Args:
        length: Frames in the sequence, at least 1.
        padding: Frames added on each side, at least 0.

    Returns:
        int64 indices into ``[0, length)``, shape ``(length + 2 * padding,)``.

    Examples:
        >>> from skelmask.data.dataset import reflect_indices
        >>> reflect_indices(4, 2).tolist()
        [2, 1, 0, 1, 2, 3, 2, 1]
    """
    positions = np.arange(-padding, length + padding, dtype=np.int64)
    if length == 1:
        return np.zeros_like(positions)
    period = 2 * (length - 1)
    folded = np.mod(positions, period)
    result: npt.NDArray[np.int64] = np.where(folded < length, folded, period - folded)
    return result


def crop_and_resize(x: FloatArray, start: int, length: int, window: int) -> FloatArray:
    """Frames ``start … start + length - 1`` of ``x``, linearly resampled to ``window`` frames.

    Args:
        x: One sample, shape ``(C, T, V, M)``.
        start: First frame of the crop, in ``[0, T)``.
        length: Frames in the crop, in ``[1, T - start]``.
        window: Output frames, at least 1.

    Returns:
        Array of shape ``(C, window, V, M)`` and the dtype of ``x``; output frame 0 is frame
        ``start`` and the last output frame is ``start + length - 1`` (for ``window > 1``).

    Examples:
        >>> import numpy as np
        >>> from skelmask.data import crop_and_resize
        >>> x = np.arange(5.0).reshape(1, 5, 1, 1)
        >>> crop_and_resize(x, 1, 3, 5).ravel().tolist()
        [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    position = np.linspace(start, start + length - 1, window)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, start + length - 1)
    weight = (position - lower).astype(x.dtype)[None, :, None, None]
    result: FloatArray = x[:, lower] * (1 - weight) + x[:, upper] * weight
    return result


def rotate(x: FloatArray, angles: npt.ArrayLike, spatial_dims: int = 3) -> FloatArray:
    """Rotates the spatial channels of one sample; other channels (scores) are kept.

    Args:
        x: One sample, shape ``(C, T, V, M)``.
        angles: Radians about x, y and z, shape ``(3,)``.
        spatial_dims: 3: channels 0–2 are xyz and get ``rotation_matrix(angles)``; 2: channels 0–1
            are in-plane xy and turn by the z angle; 0 or 1: nothing is rotated.

    Returns:
        The rotated copy, same shape and dtype as ``x``.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data import rotate
        >>> x = np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1, 1)
        >>> rotate(x, [0.0, 0.0, np.pi]).ravel().round(6).tolist()
        [-1.0, 0.0, 0.0]
    """
    result: FloatArray = x.copy()
    if spatial_dims < 2:
        return result
    alpha, beta, gamma = np.asarray(angles, dtype=np.float64)
    if spatial_dims == 2:
        alpha = beta = 0.0
    matrix = rotation_matrix([alpha, beta, gamma])[:spatial_dims, :spatial_dims].astype(x.dtype)
    result[:spatial_dims] = np.einsum("ij,jtvm->itvm", matrix, x[:spatial_dims])
    return result


def to_velocity(
    x: npt.ArrayLike, lengths: npt.ArrayLike | None = None, *, channels: int | None = None
) -> FloatArray:
    """Frame differences ``x[t + 1] - x[t]`` of the valid frames; 0 from the last valid frame on.

    Frame ``t`` of the result is the motion from frame ``t`` to ``t + 1`` (MAMP's and HA-CM's
    ``vel`` input). The last valid frame has no successor and is 0, and so is every padded frame
    beyond the valid length: no difference involves a padded frame.

    Args:
        x: One sample ``(C, T, V, M)`` or a batch ``(N, C, T, V, M)``.
        lengths: Valid frames: an integer in ``[0, T]`` for one sample, ``(N,)`` of them for a
            batch; ``None`` means all ``T`` frames are valid (a sampled window).
        channels: The leading channels to difference (the coordinates, e.g. 2 for 2D
            keypoints with a score); the others are returned unchanged. ``None``: all of them.

    Returns:
        Array of the shape of ``x``, in its floating dtype (float64 for other inputs).

    Raises:
        ValueError: If ``x`` is not 4-D or 5-D, ``lengths`` does not match it or is out of
            range, or ``channels`` is not in ``[1, C]``.

    Examples:
        >>> import numpy as np
        >>> from skelmask.data import to_velocity
        >>> x = np.array([0.0, 1.0, 3.0, 6.0, 0.0]).reshape(1, 5, 1, 1)  # 4 valid frames, 1 padded
        >>> to_velocity(x, lengths=4).ravel().tolist()
        [1.0, 2.0, 3.0, 0.0, 0.0]
    """
    values = np.asarray(x)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if values.ndim not in (4, 5):
        raise ValueError(
            f"x must have shape (C, T, V, M) or (N, C, T, V, M), got {tuple(values.shape)}"
        )
    total_channels, frames = values.shape[-4], values.shape[-3]
    count = total_channels if channels is None else channels
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= total_channels:
        raise ValueError(f"channels must be an integer in [1, C = {total_channels}], got {count!r}")
    batch = values.shape[:-4]
    valid = np.full(batch, frames) if lengths is None else np.asarray(lengths)
    if valid.shape != batch or not np.issubdtype(valid.dtype, np.integer):
        raise ValueError(
            f"lengths must be integers of shape {batch} (one per sample), got "
            f"{valid.dtype} of shape {valid.shape}"
        )
    if np.any(valid < 0) or np.any(valid > frames):
        raise ValueError(f"lengths must be in [0, T = {frames}], got {valid.tolist()}")
    valid = valid.astype(np.int64)  # an unsigned length minus one would wrap around
    moving = values[..., :count, :, :, :]
    difference = np.zeros_like(moving)
    difference[..., :-1, :, :] = moving[..., 1:, :, :] - moving[..., :-1, :, :]
    # Frame t holds a difference of two valid frames only when t + 1 < length.
    paired = np.arange(frames) < valid[..., None] - 1  # (..., T)
    result: FloatArray = values.copy()
    result[..., :count, :, :, :] = np.where(paired[..., None, :, None, None], difference, 0.0)
    return result


class SkeletonDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Fixed-window clips of ``SkeletonArrays``, with MAMP / HA-CM augmentation when training.

    See the module docstring for the transforms. ``spatial_dims`` says which leading channels are
    coordinates: by default 3 (xyz) when ``C >= 3`` and ``C`` otherwise; for 2D keypoints with a
    score (C = 3) pass ``spatial_dims=2``, which rotates in-plane by the z angle only.

    Randomness (training only): every sample draws five uniforms (crop ratio, crop start, three
    angles), then one for the temporal shift when ``temporal_padding > 0``, then six for the shear
    when ``shear > 0``; with the defaults the draws, and so the clips, are those of earlier
    versions. With ``seed=None`` every draw comes from torch's global RNG, which
    ``torch.manual_seed`` (the training engine's ``seed_everything``) fixes in the main process
    and which ``DataLoader`` re-seeds in every worker from it (``base_seed + worker_id``), so runs
    are reproducible given the global seed and workers never share a stream. With an integer
    ``seed`` the dataset owns a numpy generator seeded with ``seed``: indexing it directly in one
    process replays the same sequence of clips; in a ``DataLoader`` worker it is re-seeded once per
    worker from ``(seed, worker seed)``, so workers differ and, with non-persistent workers, every
    epoch draws fresh clips that are still fixed by ``seed`` and the global seed. For training
    that may be resumed keep ``seed=None``: skelmask's training engine saves and restores the
    global RNG in its checkpoints and reseeds workers per epoch, so a resumed run continues
    exactly, whereas the dataset's own generator is not part of any checkpoint.

    The coordinates are checked for NaN and inf once, when the dataset is built
    (``SkeletonArrays.check_finite``; skipped when ``load_prepared`` already did it), so a bad
    sample is named before training instead of surfacing as a NaN loss.

    Over a memory-mapped ``arrays.data`` (``skelmask.data.prepared.load_prepared``) the
    dataset pickles the file mapping rather than the coordinates, so ``DataLoader`` workers
    started with ``spawn`` or ``forkserver`` re-open the file instead of receiving a copy. They
    check that the file is still the one loaded (size, modification time, inode) and raise
    ``SkeletonFileError`` if it was rewritten meanwhile, instead of reading new coordinates with
    the old labels.

    Args:
        arrays: The samples.
        window: Frames per output clip, at least 1.
        train: Random crop, rotation (and shift and shear, when enabled) when true;
            deterministic centre crop when false.
        crop_ratio: ``(low, high)`` range of the training crop ratio, ``0 < low <= high <= 1``.
        eval_crop_ratio: Crop ratio of the evaluation transform, in (0, 1].
        rotation: Largest rotation angle in radians, finite and >= 0.
        seed: Optional seed of the dataset's own generator (see above).
        min_frames: Crops keep at least this many frames (all of them if a sample is shorter).
        spatial_dims: Leading coordinate channels to rotate and shear, 0–3, at most ``C``.
        shear: Largest off-diagonal shear entry, finite and >= 0 (SkeletonCLR / AimCLR use 0.5);
            0 (the default) turns shearing off.
        temporal_padding: Reflection padding ``P`` (frames) of the random temporal shift, an
            integer >= 0 (SkeletonCLR uses 6); 0 (the default) turns it off.
        normalize_view: Put every clip into its first body's frame before the transform
            (``skelmask.data.normalize_view``: centred, spine up, shoulders along x), as
            cross-view protocols do; needs 3D coordinates and a layout with the named joints.
        velocity: Return the frame differences of every clip instead of its coordinates
            (``to_velocity`` on the output window, last frame 0; see the module docstring),
            as HA-CM does on NTU RGB+D 120 and PKU-MMD II. The ``spatial_dims`` coordinate
            channels are differenced; other channels (scores) are kept. The random draws are
            those without it, so the clips are the same clips' differences.

    Raises:
        ValueError: If an argument is out of range, ``arrays.data`` holds NaN or inf (the
            message names the samples by index and name), ``normalize_view`` is set for 2D
            data or a layout without spine and shoulder joints, or ``velocity`` is set with
            ``spatial_dims=0``.

    Examples:
        >>> from skelmask.data import SkeletonDataset, generate_synthetic_actions
        >>> arrays = generate_synthetic_actions(4, num_classes=2, max_frames=20)
        >>> x, y = SkeletonDataset(arrays, window=16, seed=0)[0]
        >>> x.shape, x.dtype, y.dtype
        (torch.Size([3, 16, 25, 1]), torch.float32, torch.int64)
    """

    def __init__(
        self,
        arrays: SkeletonArrays,
        *,
        window: int = 64,
        train: bool = True,
        crop_ratio: tuple[float, float] = (0.5, 1.0),
        eval_crop_ratio: float = 0.95,
        rotation: float = 0.3,
        seed: int | None = None,
        min_frames: int = 4,
        spatial_dims: int | None = None,
        shear: float = 0.0,
        temporal_padding: int = 0,
        normalize_view: bool = False,
        velocity: bool = False,
    ) -> None:
        channels = arrays.data.shape[1]
        window = _check_count(window, "window")
        min_frames = _check_count(min_frames, "min_frames")
        # as_real refuses strings and bools, which float() would take ("0.5", True -> 1 rad).
        ends = as_real_pair(crop_ratio)
        if ends is None or not 0.0 < ends[0] <= ends[1] <= 1.0:
            raise ValueError(
                f"crop_ratio must be (low, high) with 0 < low <= high <= 1, got {crop_ratio!r}"
            )
        eval_ratio = as_real(eval_crop_ratio)
        if eval_ratio is None or not 0.0 < eval_ratio <= 1.0:
            raise ValueError(f"eval_crop_ratio must be in (0, 1], got {eval_crop_ratio!r}")
        angle, amplitude = as_real(rotation), as_real(shear)
        if angle is None or not (math.isfinite(angle) and angle >= 0.0):
            raise ValueError(f"rotation must be a finite angle >= 0 in radians, got {rotation!r}")
        if amplitude is None or not (math.isfinite(amplitude) and amplitude >= 0.0):
            raise ValueError(f"shear must be a finite amplitude >= 0, got {shear!r}")
        temporal_padding = _check_count(temporal_padding, "temporal_padding", minimum=0)
        seed = _check_seed(seed)
        check_flags(train=train, normalize_view=normalize_view, velocity=velocity)
        arrays.check_finite()
        dims = min(channels, 3) if spatial_dims is None else as_integer(spatial_dims)
        if dims is None or not 0 <= dims <= min(channels, 3):
            raise ValueError(
                f"spatial_dims must be in [0, min(C, 3)] = [0, {min(channels, 3)}], "
                f"got {spatial_dims!r}"
            )
        if velocity and dims == 0:
            raise ValueError(
                "velocity differences the coordinate channels, but spatial_dims=0 names none"
            )
        self.view: ViewJoints | None = None
        if normalize_view:
            if channels != 3:
                raise ValueError(f"normalize_view needs 3D coordinates (C = 3), got C = {channels}")
            self.view = view_joints(arrays.layout)
        self.arrays = arrays
        self.window = window
        self.train = bool(train)
        self.crop_ratio = ends
        self.eval_crop_ratio = eval_ratio
        self.rotation = angle
        self.seed = seed
        self.min_frames = min_frames
        self.spatial_dims = dims
        self.shear = amplitude
        self.temporal_padding = temporal_padding
        self.velocity = bool(velocity)
        self._rng = np.random.default_rng(seed)  # used only when seed is not None
        self._rng_worker_seed: int | None = None
        self._reopen_error: SkeletonFileError | None = None  # see __setstate__

    def __len__(self) -> int:
        return len(self.arrays)

    def __getstate__(self) -> dict[str, object]:
        """Pickles a memory-mapped ``data`` as its file mapping, not as its contents.

        ``DataLoader`` workers started by ``spawn`` or ``forkserver`` receive the dataset by
        pickle; pickling the mapped array itself would copy all of it into every worker.
        """
        state = self.__dict__.copy()
        mapping = _whole_memmap(self.arrays.data)
        if mapping is not None:
            arrays = self.arrays
            identity = getattr(mapping, "identity", None)
            if identity is None:  # mapped by the caller, not load_prepared: the file as it is now
                identity = FileIdentity.of(os.stat(str(mapping.filename)))
            state["arrays"] = _MappedArrays(
                filename=str(mapping.filename),
                identity=identity,
                offset=int(mapping.offset),
                shape=tuple(mapping.shape),
                dtype=str(mapping.dtype),
                fortran_order=bool(mapping.flags.f_contiguous and not mapping.flags.c_contiguous),
                labels=arrays.labels,
                lengths=arrays.lengths,
                layout=arrays.layout,
                num_classes=arrays.num_classes,
                names=arrays.names,
            )
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Re-opens a mapping pickled by ``__getstate__``.

        A file that changed since it was loaded cannot be used; the error is kept and raised by
        the first ``__getitem__``, which ``DataLoader`` reports with its message (an error
        while a spawned worker unpickles its dataset would only say that the worker died).
        """
        state.setdefault("_reopen_error", None)
        mapped = state["arrays"]
        if isinstance(mapped, _MappedArrays):
            try:
                state["arrays"] = mapped.open()
            except SkeletonFileError as error:
                state["_reopen_error"] = error
                state["arrays"] = mapped.open(placeholder=True)
        self.__dict__.update(state)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip ``x`` float32 ``(C, window, V, M)`` and label int64 of shape ``()``."""
        if self._reopen_error is not None:
            raise self._reopen_error
        sample = self.arrays.data[index]
        if self.view is not None:
            sample = normalize_view(sample[None], self.view)[0]
        valid = int(self.arrays.lengths[index])
        shortest = min(valid, self.min_frames)
        if self.train:
            shifts = int(self.temporal_padding > 0)
            draws = self._uniform(5 + shifts + (6 if self.shear > 0.0 else 0))
            ratio_draw, start_draw, *angle_draws = draws[:5]
            shear_draws = draws[5 + shifts :]
            if shifts:
                sample = self._shifted(sample, valid, draws[5])
            low, high = self.crop_ratio
            ratio = low + (high - low) * ratio_draw
            length = min(max(math.floor(valid * ratio), shortest), valid)
            start = min(math.floor(start_draw * (valid - length + 1)), valid - length)
        else:
            length = min(max(round(valid * self.eval_crop_ratio), shortest), valid)
            start = (valid - length) // 2
        clip = crop_and_resize(sample, start, length, self.window)
        if self.train and self.rotation > 0.0:
            angles = [self.rotation * (2.0 * draw - 1.0) for draw in angle_draws]
            clip = rotate(clip, angles, self.spatial_dims)
        if self.train and self.shear > 0.0:
            amounts = [self.shear * (2.0 * draw - 1.0) for draw in shear_draws]
            clip = shear(clip, amounts, self.spatial_dims)
        if self.velocity:
            clip = to_velocity(clip, channels=self.spatial_dims)
        label = torch.tensor(int(self.arrays.labels[index]), dtype=torch.int64)
        return torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)), label

    def _shifted(self, sample: FloatArray, valid: int, draw: float) -> FloatArray:
        """The ``valid`` frames after reflection padding and a window crop at offset ``U{0..2P}``.

        Returns ``(C, valid, V, M)``; only the valid frames of ``sample`` are read.
        """
        padding = self.temporal_padding
        offset = min(math.floor(draw * (2 * padding + 1)), 2 * padding)
        frames = reflect_indices(valid, padding)[offset : offset + valid]
        shifted: FloatArray = sample[:, frames]
        return shifted

    def _uniform(self, count: int) -> list[float]:
        """``count`` draws from U[0, 1) (see the class docstring for where they come from)."""
        if self.seed is None:
            return [float(draw) for draw in torch.rand(count, dtype=torch.float64)]
        worker = get_worker_info()
        if worker is not None and worker.seed != self._rng_worker_seed:
            self._rng = np.random.default_rng([self.seed, worker.seed])
            self._rng_worker_seed = worker.seed
        return [float(draw) for draw in self._rng.random(count)]


@dataclass(frozen=True)
class _MappedArrays:
    """A ``SkeletonArrays`` whose ``data`` is a read-only file mapping, by reference."""

    filename: str
    identity: FileIdentity
    offset: int
    shape: tuple[int, ...]
    dtype: str
    fortran_order: bool
    labels: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    layout: str
    num_classes: int
    names: list[str]

    def open(self, *, placeholder: bool = False) -> SkeletonArrays:
        """Maps the file again; ``SkeletonFileError`` if it is no longer the file mapped first.

        With ``placeholder``, nothing is opened: ``data`` is zeros of the same shape that take
        no memory (a broadcast scalar), for a dataset that only reports why it cannot be read.
        """
        data = (
            np.broadcast_to(np.zeros((), dtype=np.float32), self.shape)
            if placeholder
            else map_prepared_data(
                self.filename,
                offset=self.offset,
                shape=self.shape,
                dtype=self.dtype,
                fortran_order=self.fortran_order,
                identity=self.identity,
            )
        )
        return SkeletonArrays(
            data=data,
            labels=self.labels,
            lengths=self.lengths,
            layout=self.layout,
            num_classes=self.num_classes,
            names=self.names,
        )


def _whole_memmap(data: FloatArray) -> np.memmap[Any, Any] | None:
    """The read-only ``numpy.memmap`` that ``data`` views in full, or ``None``."""
    mapping = data if isinstance(data, np.memmap) else data.base
    if (
        isinstance(mapping, np.memmap)
        and mapping.mode == "r"
        and mapping.filename is not None
        and mapping.shape == data.shape
        and mapping.strides == data.strides
        and mapping.dtype == data.dtype
        and mapping.ctypes.data == data.ctypes.data
    ):
        return mapping
    return None


def _check_count(value: object, name: str, *, minimum: int = 1) -> int:
    """``value`` as an int; ``ValueError`` naming ``name`` unless it is an integer >= ``minimum``.

    NumPy integers pass; bools do not.
    """
    number = as_integer(value)
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def _check_seed(value: object) -> int | None:
    """``value`` as an int or None; ``ValueError`` unless it is None or an integer >= 0."""
    if value is None:
        return None
    number = as_integer(value)
    if number is None or number < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {value!r}")
    return number
