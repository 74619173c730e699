"""Reading device values back to the host, all that one moment needs in one transfer.

A host read (tolist, item, float(t)) waits for every kernel queued before it; on a GPU each one
stalls the sampler. The run reads back at most once per step (the decision) and once at its end
(the trace), so everything a moment needs is gathered here first and read together.
"""
from __future__ import annotations

import torch


class HostRead:
    """Tensors to read back together: add() each, then read() once (the one host sync)."""

    def __init__(self, device: torch.device | None = None):
        self.device = device  # where the parts are gathered; None: the first part's device
        self._parts: list[torch.Tensor] = []

    def add(self, values: torch.Tensor) -> int:
        """Queue a tensor (any shape, flattened); returns its index in read()'s answer."""
        self._parts.append(values.reshape(-1))
        return len(self._parts) - 1

    def read(self) -> list[list]:
        """Every queued part as a Python list, in the order added (parts of mixed dtypes are
        promoted to a common one, as torch.cat does)."""
        if not self._parts:
            return []
        device = self.device if self.device is not None else self._parts[0].device
        if len(self._parts) == 1:
            values = self._parts[0].tolist()
        else:
            values = torch.cat([part.to(device) for part in self._parts]).tolist()
        answer, start = [], 0
        for part in self._parts:
            answer.append(values[start:start + part.numel()])
            start += part.numel()
        return answer
