"""Which accelerator a torch workload would run on here, and how many CPU cores it may use."""

from __future__ import annotations

from typing import Literal

DeviceName = Literal["cuda", "mps", "cpu"]


def detect_device(preference: str = "auto") -> DeviceName:
    """CUDA when available, then Apple MPS, then CPU; an explicit preference is checked."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if preference == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if preference == "cuda" and not cuda:
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if preference == "mps" and not mps:
        raise ValueError("device 'mps' was requested but MPS is not available")
    if preference not in ("cuda", "mps", "cpu"):
        raise ValueError(f"device must be auto, cuda, mps or cpu, not {preference!r}")
    return preference  # type: ignore[return-value]


def describe_device() -> str:
    """Human-readable name of the device :func:`detect_device` picks."""
    import torch

    device = detect_device()
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)"
    return device


def usable_cores() -> int:
    """The CPUs this process may really use: the lowest of the machine's count, its
    affinity (a container's cpuset) and its cgroup CPU quota (a pod's CPU limit, rounded
    up). ``os.cpu_count()`` reads neither limit, and torch's and ONNX Runtime's default
    thread counts ignore the quota: a pod limited to 2 CPUs on a 32-core node would start
    32 compute threads and spend its quota switching between them. joblib (its loky
    backend) reads cgroup v1 and v2."""
    from joblib import cpu_count

    return int(cpu_count())
