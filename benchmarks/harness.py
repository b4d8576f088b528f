"""Shared plumbing of the benchmark scripts: devices, timing, peak memory, counts, tables and JSON.

Timing follows the usual rules for asynchronous devices: ``warmup`` untimed calls first (module
load, kernel selection, ``torch.compile``), then ``repeats`` timed calls, each bracketed by CUDA
events on a GPU or by ``time.perf_counter`` on the CPU (where every call is synchronous). The
summary is the median and the interquartile range (IQR) over the repeats.

Peak memory is measured over the timed repeats only:

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; ``peak_mib`` is the
  growth over ``memory_allocated`` before the repeats (activations and temporaries; weights,
  gradients and optimiser state held between steps are excluded), ``peak_total_mib`` the
  absolute peak.
* CPU: the kernel's peak resident set size (``VmHWM`` in ``/proc/self/status``), reset through
  ``/proc/self/clear_refs`` before the repeats; ``peak_mib`` is its growth over the resident
  size before them, ``peak_total_mib`` the whole process's peak (Python and libraries
  included). Where ``/proc`` does not offer this (not Linux), both are ``None`` ("n/a").

Two counts need no timing:

* ``count_flops``: floating-point operations of the matrix products and attention of a call
  (``torch.utils.flop_counter``), so that a time becomes an achieved TFLOP/s; the same on any
  device;
* ``count_host_syncs``: operations that make the host wait for a CUDA device (reads back such as
  ``.item()``, ``bool(tensor)``, ``nonzero``, boolean indexing, copies to the CPU, and tensors
  made from Python data), counted on whatever device the call runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """Time and memory of one benchmarked call.

    Attributes:
        median_ms: Median wall time of one call, milliseconds.
        iqr_ms: Interquartile range of the call times, milliseconds.
        repeats: Number of timed calls.
        peak_mib: Peak memory growth during the timed calls, MiB, or None where unavailable.
        peak_total_mib: Absolute peak memory during the timed calls, MiB, or None.
        warmup_s: Wall time of the warm-up calls, seconds (with ``torch.compile``, mostly the
            compilation).
    """

    median_ms: float
    iqr_ms: float
    repeats: int
    peak_mib: float | None
    peak_total_mib: float | None
    warmup_s: float


def parse_int_list(text: str) -> list[int]:
    """Parses ``"32,128"`` into ``[32, 128]``; every value must be a positive integer."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_name_list(text: str) -> list[str]:
    """Parses ``"mae,hacm"`` into ``["mae", "hacm"]``."""
    values = [item.strip() for item in text.split(",") if item.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return values


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options every benchmark shares.

    Options left at None are resolved by ``pick``: an explicit value wins, then ``--tiny``,
    then the device's default.
    """
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--batch-sizes", type=parse_int_list, default=None, help="comma-separated, e.g. 32,128"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first")
    parser.add_argument(
        "--tiny", action="store_true", help="seconds-long configuration, for tests and smoke runs"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")


def pick(explicit: Any, *, tiny: Any, cuda: Any, cpu: Any, args: argparse.Namespace) -> Any:
    """An option's value: the explicit one, else the ``--tiny`` one, else the device default."""
    if explicit is not None:
        return explicit
    if args.tiny:
        return tiny
    return cuda if resolve_device(args.device).type == "cuda" else cpu


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was requested but torch.cuda.is_available() is False")
    return torch.device(name)


def setup(args: argparse.Namespace) -> torch.device:
    """Checks the repeat counts, applies ``--threads`` and ``--seed``; returns the device."""
    device = resolve_device(args.device)
    for name in ("repeats", "warmup"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "repeats" else 0):
            raise SystemExit(f"--{name} must be ≥ {1 if name == 'repeats' else 0}, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return device


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    call: Callable[[], object], device: torch.device, *, repeats: int, warmup: int
) -> Measurement:
    """Times ``call`` and records its peak memory (see the module docstring).

    Args:
        call: The work to time; it may queue asynchronous CUDA work.
        device: Where the work runs.
        repeats: Timed calls (≥ 1).
        warmup: Untimed calls before them (≥ 0).

    Returns:
        Median and IQR of the call times, the peak memory and the warm-up time.
    """
    began_warmup = time.perf_counter()
    for _ in range(warmup):
        call()
    synchronize(device)
    warmup_s = time.perf_counter() - began_warmup
    before = _start_memory(device)
    times: list[float] = []
    for _ in range(repeats):
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            call()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            began = time.perf_counter()
            call()
            times.append((time.perf_counter() - began) * 1e3)
    peak_total = _peak_memory(device)
    growth = None if peak_total is None or before is None else max(peak_total - before, 0.0)
    return Measurement(
        median_ms=statistics.median(times),
        iqr_ms=_iqr(times),
        repeats=repeats,
        peak_mib=growth,
        peak_total_mib=peak_total,
        warmup_s=warmup_s,
    )


def _cpu_attention_flops(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return int(flop_counter.sdpa_flop_count(query, key, value))


def _cpu_attention_backward_flops(
    grad_out: Any, query: Any, key: Any, value: Any, *args: Any, **kwargs: Any
) -> int:
    return int(flop_counter.sdpa_backward_flop_count(grad_out, query, key, value))


def count_flops(call: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products and attention that ``call`` runs.

    ``torch.utils.flop_counter`` counts matrix products, convolutions and the CUDA attention
    kernels; the CPU's fused attention kernel is missing from its table and is added here with
    the same formulas, so a count does not depend on the device. Element-wise work (norms,
    activations, the optimiser) is not counted: next to the matrix products it is small in
    FLOPs, though not always in time.

    Args:
        call: The work to count; it runs once, for real.

    Returns:
        The FLOPs (a multiply-add counts 2).
    """
    aten = torch.ops.aten
    custom = {
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops,
    }
    with flop_counter.FlopCounterMode(display=False, custom_mapping=custom) as counter:
        call()
    return int(counter.get_total_flops())


# Operators whose result needs the tensor's values on the host, or whose output shape depends on
# them (so the host must wait for the device to know it).
_READ_BACK_OPS = frozenset(
    {
        "_local_scalar_dense",
        "nonzero",
        "masked_select",
        "_unique2",
        "unique_dim",
        "unique_consecutive",
    }
)
# A tensor made from Python data (``torch.tensor``, ``torch.as_tensor``): on CUDA a blocking copy
# from pageable host memory, which waits for the stream.
_HOST_DATA_OPS = frozenset({"lift_fresh", "lift_fresh_copy"})


class _HostSyncCounter(TorchDispatchMode):
    """Counts, by operator name, the calls that make the host wait for a CUDA device."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if (
            name in _READ_BACK_OPS
            or name in _HOST_DATA_OPS
            or _indexes_with_a_mask(name, args)
            or _copies_to_host(name, args, kwargs)
        ):
            self.counts[name] += 1
        return func(*args, **kwargs)


def _indexes_with_a_mask(name: str, args: tuple[Any, ...]) -> bool:
    """``x[mask]`` and ``x[mask] = v``: a boolean index is turned into positions on the host."""
    if name not in ("index", "index_put", "index_put_") or len(args) < 2:
        return False
    return any(
        isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)
        for index in args[1]
    )


def _copies_to_host(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A copy from a non-CPU tensor into CPU memory (``.cpu()``, ``.to("cpu")``, ``copy_``)."""
    if name == "_to_copy" and args and isinstance(args[0], torch.Tensor):
        target = kwargs.get("device")
        return args[0].device.type != "cpu" and target is not None and target.type == "cpu"
    if name == "copy_" and len(args) >= 2 and isinstance(args[1], torch.Tensor):
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


def count_host_syncs(call: Callable[[], object]) -> dict[str, int]:
    """How often ``call`` would make the host wait for a CUDA device, by operator.

    Counts reads back to the host (``.item()``, ``bool()``/``int()``/``float()`` of a tensor,
    all ``_local_scalar_dense``), operators whose output size depends on the data (``nonzero``,
    ``masked_select``, ``unique``), boolean-mask indexing, copies to the CPU, and tensors made
    from Python data (``torch.tensor``, ``torch.as_tensor``: ``lift_fresh``), which on CUDA are
    blocking copies. On the CPU none of these waits for anything, but code that does not branch
    on the device reads back there just as on CUDA, so a CPU count shows where a CUDA run would
    stall. It errs towards counting: code that checks values differently off the CPU
    (skelmask's input checks queue assertions on the device there) reads back on the CPU only;
    operations on tensors that live on the CPU by design (an optimiser's step counter) count
    too, so count a model's forward and backward passes rather than a whole optimiser step; and
    a Python number assigned into a CPU tensor (``x[mask] = 0.0``) shows as ``lift_fresh``
    although CUDA may fill it on the device.

    Args:
        call: The work to count; it runs once, for real.

    Returns:
        ``{operator name: calls}``; empty when nothing would wait.
    """
    with _HostSyncCounter() as counter:
        call()
    return dict(counter.counts)


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return quartiles[2] - quartiles[0]


def _proc_kib(field: str) -> float | None:
    try:
        status = _STATUS.read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+)\s+kB", status, flags=re.MULTILINE)
    return None if found is None else int(found.group(1)) / 1024


def _start_memory(device: torch.device) -> float | None:
    """Resets the peak counter; returns the memory in use now, MiB."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / _MIB
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets the peak RSS (Linux ≥ 4.0)
    except OSError:
        return None
    return _proc_kib("VmRSS")


def _peak_memory(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / _MIB
    return _proc_kib("VmHWM")


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: versions, device, threads and time."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model() or platform.processor() or platform.machine()
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device.type,
        "device_name": name,
        "threads": torch.get_num_threads(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str | None:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
    return None if found is None else found.group(1).strip()


def describe_environment(info: dict[str, Any]) -> str:
    """One line for the top of a report."""
    return (
        f"torch {info['torch']} · {info['device']} ({info['device_name']}) · "
        f"{info['threads']} threads · {info['time_utc']}"
    )


def format_ms(value: float) -> str:
    """Milliseconds with three significant figures."""
    return f"{value:.3g}"


def format_mib(value: float | None) -> str:
    """MiB rounded to one decimal, or ``n/a``."""
    return "n/a" if value is None else f"{value:.1f}"


def verdict(passed: bool) -> str:
    """``pass`` or ``FAIL``."""
    return "pass" if passed else "FAIL"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table with one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def measurement_record(measurement: Measurement) -> dict[str, Any]:
    """The measurement as a JSON-ready dict."""
    return asdict(measurement)


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Writes ``payload`` as indented JSON when ``path`` is given, creating parent folders.

    The file is replaced in one rename, so a run stopped while writing leaves the previous
    version whole (the scripts rewrite their JSON after every row).
    """
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    partial.replace(path)
