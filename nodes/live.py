"""Live progress for the browser: one small server event per step (no tensors), best effort.

Event `adaptive_diffusion.progress`: {"node", "prompt_id", "step", "total", "mask", "done",
"summary"}; `mask` is one character per step: "1" computed, "0" skipped, "." not reached yet.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..adaptive_core import AdaptiveRun, AdaptiveTrace

EVENT = "adaptive_diffusion.progress"
log = logging.getLogger("AdaptiveDiffusion")


def _server():
    try:
        import server
        return getattr(server.PromptServer, "instance", None)
    except (ImportError, AttributeError):
        return None


def _executing_node() -> tuple[str | None, str | None]:
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return None, None
    context = get_executing_context()
    return (context.node_id, context.prompt_id) if context else (None, None)


@dataclass
class Progress:
    run: AdaptiveRun
    node_id: str | None
    prompt_id: str | None

    @classmethod
    def for_current_node(cls, run: AdaptiveRun) -> "Progress":
        node_id, prompt_id = _executing_node()
        return cls(run, node_id, prompt_id)

    def step(self, step: int) -> None:
        self._send(self.run.live_mask(step), step, done=False, summary="")

    def finished(self, trace: AdaptiveTrace) -> None:
        # The summary goes to the strip's caption only. Not also to the frontend's progress text
        # (PromptServer.send_progress_text): both frontends then showed it twice on the node, and
        # the caption is the one that comes back with a result loaded from the queue history.
        mask = trace.mask_bits()
        self._send(mask, trace.total_steps - 1, done=True, summary=trace.summary())

    def _send(self, mask: str, step: int, done: bool, summary: str) -> None:
        server = _server()
        if server is None or self.node_id is None:
            return
        data = {"node": self.node_id, "prompt_id": self.prompt_id, "step": step,
                "total": len(mask), "mask": mask, "done": done, "summary": summary}
        try:
            server.send_sync(EVENT, data, server.client_id)
        except Exception as error:  # the UI is optional; sampling must never fail because of it
            log.debug("AdaptiveDiffusion: progress event not sent: %s", error)
